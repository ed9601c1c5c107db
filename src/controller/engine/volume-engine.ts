import type { Registry } from 'prom-client';
import { InvalidArgumentError, errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { BlockDeviceError, type BlockDevice } from '../../iscsi/block-device';
import { quorum, type ReplicaMode, type VolumeState } from './ack-policy';
import { systemClock, type Clock, type TimerHandle } from './clock';
import { checkReplicaCount, resolveTuning, type EngineTuning } from './engine-config';
import { EngineMetrics } from './engine-metrics';
import { rebuildReplica } from './rebuild';
import { LinkErrorCode, type ReplicaLink } from './replica-link';
import { ReplicaSet } from './replica-set';
import { ReplicaSlot } from './replica-slot';
import { SnapshotManager } from './snapshots';
import { establish } from './startup';

export interface VolumeEngineOptions {
  readonly volumeId: string;
  readonly links: readonly ReplicaLink[];
  readonly logger: Logger;
  readonly registry: Registry;
  readonly blockSize?: number;
  readonly clock?: Clock;
  readonly tuning?: Partial<EngineTuning>;
  /** Whether an initiator is logged in (revert refuses while one is). */
  readonly attached?: () => boolean;
}

export interface ReplicaStatusView {
  readonly id: string;
  readonly mode: ReplicaMode;
  readonly lastError?: string;
  readonly rebuild?: { kind: 'delta' | 'full'; bytesDone: number; bytesTotal: number; bytesPerSecond: number; etaSeconds: number | null };
}

export interface EngineStatus {
  readonly volumeId: string;
  readonly state: VolumeState;
  /** A newer controller owns the volume; this engine refuses all I/O for good. */
  readonly fenced: boolean;
  readonly epoch: number;
  readonly seq: number;
  readonly size: number;
  readonly replicaCount: number;
  readonly quorum: number;
  readonly replicas: readonly ReplicaStatusView[];
}

/**
 * The volume engine: a BlockDevice over 1-5 replicas with synchronous
 * replication (DESIGN.md, invariants 1-8). Mutations go through the
 * ReplicaSet's fan-out and ack rule; reads go to one RW replica; a maintenance
 * tick brings replicas in ERR back through a rebuild, or re-establishes the
 * volume when none is left in service.
 */
export class VolumeEngine implements BlockDevice {
  readonly blockSize: number;
  readonly id: string;
  /** Snapshot create/delete/list/revert, cut as barriers in the write stream (invariant 7). */
  readonly snapshots: SnapshotManager;
  private capacity = 0;
  /** The size a resize in flight is taking the volume to: a rebuild grows its target to it too. */
  private growing = 0;
  private closed = false;
  private readonly set: ReplicaSet;
  private readonly slotsById: readonly ReplicaSlot[];
  private readonly clock: Clock;
  private readonly tuning: EngineTuning;
  private readonly logger: Logger;
  private readonly metrics: EngineMetrics;
  private readonly resizeListeners = new Set<(size: number) => void>();
  private readonly needsFull = new Set<string>();
  private timer: TimerHandle | undefined;
  private beat: TimerHandle | undefined;
  private busy = false;
  private nextReader = 0;

  private constructor(options: VolumeEngineOptions) {
    checkReplicaCount(options.links.length);
    const tuning = resolveTuning(options.tuning);
    const clock = options.clock ?? systemClock;
    const logger = options.logger.child({ volume: options.volumeId });
    const metrics = new EngineMetrics(options.registry, options.volumeId);
    const slots = options.links.map((link) => new ReplicaSlot(link, clock, tuning.opTimeoutMs, logger));
    const set = new ReplicaSet(slots, logger, metrics);
    this.snapshots = new SnapshotManager(set, options.attached ?? (() => false));
    this.set = set;
    this.slotsById = slots;
    this.clock = clock;
    this.tuning = tuning;
    this.logger = logger;
    this.metrics = metrics;
    this.id = options.volumeId;
    this.blockSize = options.blockSize ?? 4096;
  }

  /**
   * Opens the volume: establishes ownership over a quorum and resolves once
   * writes are accepted, or rejects with 'unavailable' after openTimeoutMs.
   */
  static async open(options: VolumeEngineOptions): Promise<VolumeEngine> {
    const engine = new VolumeEngine(options);
    try {
      await engine.waitServing(engine.tuning.openTimeoutMs);
    } catch (err) {
      await engine.close();
      throw err;
    }
    return engine;
  }

  private waitServing(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const deadline = this.clock.setTimer(timeoutMs, () => {
        stop();
        reject(new BlockDeviceError('unavailable', `no quorum of ${quorum(this.set.replicaCount)} replicas within ${timeoutMs} ms`));
      });
      const stop = this.set.onChange(() => {
        if (this.set.fenced) {
          stop();
          deadline.cancel();
          reject(new BlockDeviceError('unavailable', 'volume is owned by a newer controller'));
        } else if (this.set.state() !== 'offline') {
          stop();
          deadline.cancel();
          resolve();
        }
      });
      this.tick();
      this.beat ??= this.clock.setTimer(this.tuning.probeIntervalMs, () => this.heartbeat());
    });
  }

  /**
   * Pings each idle replica in the write set: without I/O a dead or stopped
   * replica would stay RW unnoticed, and the next write would pay the timeout.
   * Runs on its own timer so a long rebuild does not hold it up.
   */
  private heartbeat(): void {
    if (this.closed || this.set.fenced) return;
    for (const slot of this.slotsById) {
      if (slot.mode === 'ERR' || slot.outstanding > 0) continue;
      const generation = slot.generation;
      slot.call('ping', () => slot.link.ping()).catch((err: unknown) => this.set.failed(slot, generation, err, 'ping'));
    }
    this.beat = this.clock.setTimer(this.tuning.probeIntervalMs, () => this.heartbeat());
  }

  /** One maintenance step, re-armed after it finishes (never two at once). */
  private tick(): void {
    if (this.closed || this.set.fenced || this.busy) return;
    this.busy = true;
    this.maintain()
      .catch((err: unknown) => this.logger.warn({ err }, 'maintenance step failed'))
      .finally(() => {
        this.busy = false;
        if (!this.closed && !this.set.fenced) this.timer = this.clock.setTimer(this.tuning.probeIntervalMs, () => this.tick());
      });
  }

  private async maintain(): Promise<void> {
    if (this.closed) return;
    if (this.set.count('RW') === 0) {
      const size = await establish(this.set, this.logger, () => !this.closed);
      if (size !== undefined) this.capacity = size;
      if (size === undefined || this.set.count('RW') === 0) return;
    }
    const source = this.pickReader();
    const target = this.slotsById.find((s) => s.mode === 'ERR' && s.outstanding === 0);
    if (!source || !target) return;
    const generation = target.generation;
    try {
      await target.call('ping', () => target.link.ping());
    } catch {
      return;
    }
    if (target.generation !== generation || target.mode !== 'ERR') return;
    const full = this.needsFull.has(target.id);
    const outcome = await rebuildReplica({ set: this.set, clock: this.clock, metrics: this.metrics, bytesPerSecond: this.tuning.rebuildBytesPerSecond, blockSize: this.blockSize, size: () => Math.max(this.capacity, this.growing) }, target, source, full);
    if (outcome === 'needs-full') this.needsFull.add(target.id);
    if (outcome === 'done') this.needsFull.delete(target.id);
  }

  size(): number {
    return this.capacity;
  }

  private check(offset: number, length: number): void {
    if (this.closed) throw new BlockDeviceError('unavailable', 'volume engine is closed');
    const bs = this.blockSize;
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset % bs !== 0 || length % bs !== 0) {
      throw new BlockDeviceError('io', `misaligned range offset=${offset} length=${length} (block size ${bs})`);
    }
    if (offset + length > this.capacity) throw new BlockDeviceError('io', `range offset=${offset} length=${length} is past the end (${this.capacity})`);
  }

  /** The RW replica with the fewest reads in flight, skipping one much slower than the rest; round-robin on ties. */
  private pickReader(): ReplicaSlot | undefined {
    const rw = this.slotsById.filter((s) => s.mode === 'RW');
    if (rw.length === 0) return undefined;
    const fastest = Math.min(...rw.map((s) => s.latencyMs || Infinity));
    const score = (s: ReplicaSlot): number => s.reads + (Number.isFinite(fastest) && s.latencyMs > fastest * 4 + 5 ? 8 : 0);
    this.nextReader = (this.nextReader + 1) % rw.length;
    let best = rw[this.nextReader];
    for (let i = 0; i < rw.length; i++) {
      const slot = rw[(this.nextReader + i) % rw.length];
      if (score(slot) < score(best)) best = slot;
    }
    return best;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    this.check(offset, length);
    const started = this.metrics.start();
    const done = (ok: boolean): void => this.metrics.end('read', started, ok, length);
    // Each failure drops its replica, so this ends after at most n attempts.
    for (let attempt = 0; attempt <= this.slotsById.length; attempt++) {
      if (this.set.fenced) break;
      const slot = this.pickReader();
      if (!slot) break;
      const generation = slot.generation;
      const started = this.clock.now();
      slot.reads++;
      try {
        const data = await slot.call('read', () => slot.link.read(offset, length));
        slot.recordReadLatency(this.clock.now() - started);
        if (data.length !== length) throw new BlockDeviceError('io', `replica ${slot.id} returned ${data.length} bytes for a ${length}-byte read`);
        done(true);
        return data;
      } catch (err) {
        if (errorCode(err) === LinkErrorCode.OutOfRange) {
          done(false);
          throw new BlockDeviceError('io', 'read past the end of the replica', { cause: err });
        }
        this.set.failed(slot, generation, err, 'read');
      } finally {
        slot.reads--;
      }
    }
    done(false);
    throw new BlockDeviceError('unavailable', 'no replica in service can serve the read');
  }

  // Mutations are plain functions returning the measured promise rather than
  // async functions: one promise less per SCSI command on the write path.
  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    const fua = options?.fua ?? false;
    return this.mutation('write', offset, data.length, true, (slot, epoch, seq) => slot.link.write(epoch, seq, offset, data, fua));
  }

  unmap(offset: number, length: number): Promise<void> {
    return this.mutation('unmap', offset, length, true, (slot, epoch, seq) => slot.link.unmap(epoch, seq, offset, length));
  }

  /** Invariant 8: every replica in the write set fsyncs before the ack. */
  flush(): Promise<void> {
    return this.mutation('flush', 0, 0, false, (slot, epoch) => slot.link.flush(epoch));
  }

  /** Checks the range, sends the mutation through the ack rule and records its latency and outcome. */
  private mutation(op: 'write' | 'unmap' | 'flush', offset: number, length: number, consumesSeq: boolean, send: Parameters<ReplicaSet['mutate']>[2]): Promise<void> {
    try {
      this.check(offset, length);
    } catch (err) {
      return Promise.reject(err as Error);
    }
    const started = this.metrics.start();
    return this.set.mutate(op, consumesSeq, send).then(
      () => this.metrics.end(op, started, true, length),
      (err: unknown) => {
        this.metrics.end(op, started, false, length);
        throw err;
      },
    );
  }

  /** Grows the volume on every replica in the write set, then tells listeners (the target raises a unit attention). */
  async resize(newSize: number): Promise<void> {
    if (!Number.isSafeInteger(newSize) || newSize <= 0 || newSize % this.blockSize !== 0) throw new InvalidArgumentError(`size ${newSize} is not a positive multiple of ${this.blockSize}`);
    if (newSize < this.capacity) throw new InvalidArgumentError(`shrinking a volume (${this.capacity} -> ${newSize}) is not supported`);
    if (newSize === this.capacity) return;
    this.growing = Math.max(this.growing, newSize);
    await this.set.mutate('resize', false, (slot, epoch) => slot.link.resize(epoch, newSize));
    this.capacity = Math.max(this.capacity, newSize);
    for (const listener of this.resizeListeners) listener(newSize);
  }

  onResize(listener: (newSize: number) => void): () => void {
    this.resizeListeners.add(listener);
    return () => this.resizeListeners.delete(listener);
  }

  status(): EngineStatus {
    const now = this.clock.now();
    return {
      volumeId: this.id,
      state: this.closed ? 'offline' : this.set.state(),
      fenced: this.set.fenced,
      epoch: this.set.epoch,
      seq: this.set.seq,
      size: this.capacity,
      replicaCount: this.set.replicaCount,
      quorum: quorum(this.set.replicaCount),
      replicas: this.slotsById.map((s) => {
        const r = s.rebuild;
        if (!r) return { id: s.id, mode: s.mode, lastError: s.lastError };
        const seconds = Math.max((now - r.startedAt) / 1000, 0.001);
        const rate = r.bytesDone / seconds;
        const eta = rate > 0 ? Math.max(r.bytesTotal - r.bytesDone, 0) / rate : null;
        return { id: s.id, mode: s.mode, lastError: s.lastError, rebuild: { kind: r.kind, bytesDone: r.bytesDone, bytesTotal: r.bytesTotal, bytesPerSecond: rate, etaSeconds: eta } };
      }),
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.timer?.cancel();
    this.beat?.cancel();
    this.logger.info({ epoch: this.set.epoch, seq: this.set.seq }, 'volume engine closed');
    await Promise.allSettled(this.slotsById.map((s) => s.link.close()));
  }
}
