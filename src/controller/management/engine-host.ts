import type { Registry } from 'prom-client';
import { TriremeError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { BlockDeviceError, type BlockDevice } from '../../iscsi/block-device';
import type { SnapshotInfo } from '../../replica/store-types';
import { DEFAULT_MAX_PAYLOAD } from '../../replica/wire/protocol';
import type { EngineTuning } from '../engine/engine-config';
import type { ReplicaLink } from '../engine/replica-link';
import { VolumeEngine } from '../engine/volume-engine';
import type { SnapshotView, VolumeControl, VolumeStatusView } from './volume-control';

export interface EngineHostOptions {
  readonly volume: string;
  readonly addresses: readonly string[];
  /** Makes the link to one replica (the network link in the controller process). */
  readonly connect: (address: string) => ReplicaLink;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly tuning?: Partial<EngineTuning>;
  readonly iqn: string;
  readonly portal: string;
  /** Logged-in iSCSI sessions (revert refuses while there are any). */
  readonly sessions: () => number;
}

/** The largest read or write handed to the engine at once: one replica frame. */
const MAX_PIECE = DEFAULT_MAX_PAYLOAD;

const toSnapshotView = (s: SnapshotInfo): SnapshotView => ({ name: s.name, seq: s.seq, epoch: s.epoch, createdAt: s.createdAt, sizeBytes: s.sizeBytes });

/**
 * The volume of one controller process: a BlockDevice for the iSCSI target
 * and the VolumeControl for the management API, over a VolumeEngine.
 *
 * The engine's replica set is fixed for its lifetime, so adding or removing a
 * replica swaps the engine: I/O is held at a gate, in-flight requests drain,
 * the old engine closes and a new one opens over the new address list (which
 * raises the epoch and rebuilds the newcomer, invariants 3 and 5). The target
 * keeps its sessions; initiators only see a short pause.
 */
export class EngineHost implements BlockDevice, VolumeControl {
  readonly blockSize = 4096;
  readonly id: string;
  private engine!: VolumeEngine;
  private addresses: string[];
  private gate: Promise<void> | undefined;
  private inFlight = 0;
  private drained: (() => void) | undefined;
  private readonly listeners = new Set<(size: number) => void>();
  private unsubscribe: (() => void) | undefined;
  private frozen: VolumeStatusView | undefined;

  private constructor(private readonly options: EngineHostOptions) {
    this.id = options.volume;
    this.addresses = [...options.addresses];
  }

  static async open(options: EngineHostOptions): Promise<EngineHost> {
    const host = new EngineHost(options);
    host.attach(await host.openEngine(host.addresses));
    return host;
  }

  private async openEngine(addresses: readonly string[]): Promise<VolumeEngine> {
    // The engine reuses its metrics when they already exist on the registry, so a swapped-in engine continues the series.
    return VolumeEngine.open({
      volumeId: this.options.volume,
      links: addresses.map((a) => this.options.connect(a)),
      logger: this.options.logger,
      registry: this.options.registry,
      tuning: this.options.tuning,
      attached: () => this.options.sessions() > 0,
    });
  }

  private attach(engine: VolumeEngine): void {
    this.unsubscribe?.();
    this.engine = engine;
    this.unsubscribe = engine.onResize((size) => {
      for (const listener of this.listeners) listener(size);
    });
  }

  /** Runs one request on the current engine, after any swap in progress. */
  private async use<T>(fn: (engine: VolumeEngine) => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    this.inFlight++;
    try {
      return await fn(this.engine);
    } finally {
      if (--this.inFlight === 0) this.drained?.();
    }
  }

  size(): number {
    return this.engine.size();
  }

  // The target accepts transfers up to 32 MiB (Block Limits VPD) while one
  // replica frame carries at most DEFAULT_MAX_PAYLOAD: larger requests go to
  // the engine in pieces. SBC-3 promises no atomicity across a multi-block
  // write, so pieces with their own seqs keep every invariant.
  async read(offset: number, length: number): Promise<Buffer> {
    if (length <= MAX_PIECE) return this.use((e) => e.read(offset, length));
    const pieces: Array<Promise<Buffer>> = [];
    for (let at = 0; at < length; at += MAX_PIECE) pieces.push(this.use((e) => e.read(offset + at, Math.min(MAX_PIECE, length - at))));
    return Buffer.concat(await Promise.all(pieces));
  }

  async write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    if (data.length <= MAX_PIECE) return this.use((e) => e.write(offset, data, options));
    const pieces: Array<Promise<void>> = [];
    for (let at = 0; at < data.length; at += MAX_PIECE) pieces.push(this.use((e) => e.write(offset + at, data.subarray(at, at + MAX_PIECE), options)));
    await Promise.all(pieces);
  }

  flush(): Promise<void> {
    return this.use((e) => e.flush());
  }

  unmap(offset: number, length: number): Promise<void> {
    return this.use((e) => e.unmap(offset, length));
  }

  onResize(listener: (newSize: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  status(): VolumeStatusView {
    // While the engine is swapped the old one is closed: the last view before the swap is the truthful one.
    if (this.frozen) return this.frozen;
    const s = this.engine.status();
    return {
      volume: this.options.volume,
      sizeBytes: s.size,
      state: s.state,
      epoch: s.epoch,
      seq: s.seq,
      iqn: this.options.iqn,
      portal: this.options.portal,
      sessions: this.options.sessions(),
      replicas: s.replicas.map((r, i) => ({
        address: this.addresses[i] ?? r.id,
        mode: r.mode,
        // The engine keeps the last error after a recovery; only a replica out of service shows it.
        error: r.mode === 'ERR' ? (r.lastError ?? 'unreachable') : '',
        rebuild: r.rebuild
          ? { kind: r.rebuild.kind, bytesDone: r.rebuild.bytesDone, bytesTotal: r.rebuild.bytesTotal, rateBytesPerSecond: r.rebuild.bytesPerSecond, etaSeconds: r.rebuild.etaSeconds ?? -1 }
          : null,
      })),
    };
  }

  async expand(sizeBytes: number): Promise<void> {
    const current = this.engine.size();
    if (sizeBytes < current) throw new TriremeError('ERR_OUT_OF_RANGE', `cannot shrink volume ${this.options.volume} from ${current} to ${sizeBytes} bytes`);
    if (sizeBytes % this.blockSize !== 0) throw new TriremeError('ERR_INVALID_ARGUMENT', `size ${sizeBytes} is not a multiple of ${this.blockSize}`);
    await this.use((e) => e.resize(sizeBytes));
  }

  async createSnapshot(name: string): Promise<SnapshotView> {
    return toSnapshotView(await this.use((e) => e.snapshots.create(name)));
  }

  async listSnapshots(): Promise<SnapshotView[]> {
    return (await this.use((e) => e.snapshots.list())).map(toSnapshotView);
  }

  private async requireSnapshot(e: VolumeEngine, name: string): Promise<void> {
    if (!(await e.snapshots.list()).some((s) => s.name === name)) throw new TriremeError('ERR_SNAPSHOT_NOT_FOUND', `volume ${this.options.volume} has no snapshot "${name}"`);
  }

  async deleteSnapshot(name: string): Promise<void> {
    await this.use(async (e) => {
      await this.requireSnapshot(e, name);
      await e.snapshots.delete(name);
    });
  }

  async revertSnapshot(name: string): Promise<void> {
    await this.use(async (e) => {
      await this.requireSnapshot(e, name);
      await e.snapshots.revert(name);
    });
  }

  async addReplica(address: string): Promise<void> {
    if (this.addresses.includes(address)) throw new TriremeError('ERR_ALREADY_EXISTS', `replica ${address} is already part of volume ${this.options.volume}`);
    await this.reconfigure([...this.addresses, address]);
  }

  async removeReplica(address: string): Promise<void> {
    if (!this.addresses.includes(address)) throw new TriremeError('ERR_REPLICA_NOT_FOUND', `replica ${address} is not part of volume ${this.options.volume}`);
    if (this.addresses.length === 1) throw new TriremeError('ERR_FAILED_PRECONDITION', 'cannot remove the last replica');
    await this.reconfigure(this.addresses.filter((a) => a !== address));
  }

  /** Swaps the engine for one over `addresses`; on failure the old set is reopened. */
  private async reconfigure(addresses: string[]): Promise<void> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise((resolve) => (open = resolve));
    try {
      if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
      this.drained = undefined;
      const size = this.engine.size();
      this.frozen = this.status();
      await this.engine.close();
      try {
        this.attach(await this.openEngine(addresses));
        this.addresses = addresses;
        this.options.logger.info({ volume: this.options.volume, replicas: addresses }, 'replica set changed');
      } catch (err) {
        this.options.logger.error({ err, volume: this.options.volume }, 'new replica set did not come up; reopening the old one');
        this.attach(await this.openEngine(this.addresses));
        throw new BlockDeviceError('unavailable', `replica set change failed: ${(err as Error).message}`, { cause: err });
      }
      if (this.engine.size() > size) for (const listener of this.listeners) listener(this.engine.size());
    } finally {
      this.frozen = undefined;
      this.gate = undefined;
      open();
    }
  }

  close(): Promise<void> {
    this.unsubscribe?.();
    return this.engine.close();
  }
}
