import { errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { BlockDeviceError } from '../../iscsi/block-device';
import { canMutate, decideAck, nextMode, volumeState, type ModeEvent, type ReplicaMode, type TargetState, type VolumeState } from './ack-policy';
import type { EngineMetrics } from './engine-metrics';
import { LinkErrorCode, isStaleEpoch } from './replica-link';
import type { ReplicaSlot } from './replica-slot';

/** One replica's part in one mutation; `mode` is the replica's mode now, ERR once it left the write set. */
class Target implements TargetState {
  acked = false;

  constructor(
    readonly slot: ReplicaSlot,
    readonly generation: number,
  ) {}

  get mode(): ReplicaMode {
    return this.slot.generation === this.generation ? this.slot.mode : 'ERR';
  }
}

interface Mutation {
  readonly seq: number;
  readonly targets: Target[];
  readonly resolve: (seq: number) => void;
  readonly reject: (err: Error) => void;
  failure?: string;
}

/**
 * The write set: stamps mutations with (epoch, seq), fans them out to every RW
 * and WO replica in parallel and settles each one through decideAck. It also
 * owns mode changes, so a drop re-evaluates every pending mutation at once.
 */
export class ReplicaSet {
  epoch = 0;
  /** The last seq stamped (invariant 2: strictly increasing). */
  seq = 0;
  fenced = false;
  /** The epoch this engine last established the volume with (0: never). */
  ownedEpoch = 0;
  private readonly pending = new Set<Mutation>();
  private gate: Promise<void> | undefined;
  private readonly listeners = new Set<() => void>();

  constructor(
    readonly slots: readonly ReplicaSlot[],
    private readonly logger: Logger,
    private readonly metrics: EngineMetrics,
  ) {}

  get replicaCount(): number {
    return this.slots.length;
  }

  count(mode: 'RW' | 'WO' | 'ERR'): number {
    return this.slots.filter((s) => s.mode === mode).length;
  }

  state(): VolumeState {
    return volumeState(
      this.slots.map((s) => s.mode),
      this.replicaCount,
      this.fenced,
    );
  }

  /** Calls `listener` after every mode change (the engine schedules rebuilds from it). */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  setMode(slot: ReplicaSlot, event: ModeEvent, reason?: string): void {
    const before = slot.mode;
    const after = nextMode(before, event);
    if (after === before) return;
    slot.mode = after;
    if (after === 'ERR') {
      slot.generation++;
      slot.lastError = reason;
      this.metrics.drop(reason ?? 'unknown');
    }
    slot.logger.info({ from: before, to: after, reason, state: this.state() }, 'replica mode changed');
    this.metrics.modes(this.slots.map((s) => s.mode));
    slot.poke();
    for (const mutation of [...this.pending]) this.evaluate(mutation);
    for (const listener of this.listeners) listener();
  }

  /** A replica refused our epoch: a newer controller owns the volume (invariant 3). */
  fence(): void {
    if (this.fenced) return;
    this.fenced = true;
    this.logger.error({ epoch: this.epoch }, 'fenced by a newer controller: refusing all I/O');
    for (const mutation of [...this.pending]) this.finish(mutation, new BlockDeviceError('unavailable', 'volume is owned by a newer controller'));
    for (const listener of this.listeners) listener();
  }

  /** Handles a failed call on a slot: fencing for a stale epoch, else a drop to ERR. */
  failed(slot: ReplicaSlot, generation: number, err: unknown, what: string, epoch = this.epoch): void {
    if (isStaleEpoch(err)) {
      // A refusal of an epoch we already left behind (our own request from
      // before a recovery raised it) says nothing about a newer controller.
      if (epoch === this.epoch) this.fence();
      return;
    }
    if (slot.generation !== generation) return;
    const code = errorCode(err) ?? 'ERR_UNKNOWN';
    slot.logger.warn({ err, code, what }, 'replica request failed');
    this.setMode(slot, 'failed', code);
  }

  checkWritable(): void {
    if (this.fenced) throw new BlockDeviceError('unavailable', 'volume is owned by a newer controller');
    if (!canMutate(this.count('RW'), this.replicaCount)) {
      throw new BlockDeviceError('unavailable', `only ${this.count('RW')} of ${this.replicaCount} replicas are in service; writes need a quorum`);
    }
  }

  /** Holds new mutations until `barrier` settles (snapshot cut, invariant 7). */
  async pause<T>(barrier: () => Promise<T>): Promise<T> {
    while (this.gate) await this.gate;
    let open!: () => void;
    this.gate = new Promise<void>((resolve) => (open = resolve));
    try {
      return await barrier();
    } finally {
      this.gate = undefined;
      open();
    }
  }

  private drainWaiters: Array<() => void> = [];

  /** Resolves when no mutation is pending (used under pause(), so none start meanwhile). */
  drained(): Promise<void> {
    if (this.pending.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /**
   * Stamps and sends one mutation. `consumesSeq` is false for flush and resize,
   * which order behind earlier writes on each ordered link but write no record.
   * Stamping and sending happen in one synchronous step, so every link sees
   * mutations in seq order. Resolves with the seq once decideAck says so.
   *
   * Not an async function: on the write path (one call per SCSI write) it
   * makes one promise for the caller and none per replica (slot.dispatch
   * takes a callback).
   */
  mutate(what: string, consumesSeq: boolean, send: (slot: ReplicaSlot, epoch: number, seq: number) => Promise<unknown>): Promise<number> {
    if (this.gate) return this.mutateAfterGate(what, consumesSeq, send);
    try {
      return this.stamp(what, consumesSeq, send);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /**
   * Waits out a barrier, then stamps in the same microtask as the last check:
   * mutations held at the gate wake in the order they arrived and must take
   * their seqs in that order, before a barrier waiting behind them closes the
   * gate again.
   */
  private async mutateAfterGate(what: string, consumesSeq: boolean, send: (slot: ReplicaSlot, epoch: number, seq: number) => Promise<unknown>): Promise<number> {
    while (this.gate) await this.gate;
    return this.stamp(what, consumesSeq, send);
  }

  private stamp(what: string, consumesSeq: boolean, send: (slot: ReplicaSlot, epoch: number, seq: number) => Promise<unknown>): Promise<number> {
    this.checkWritable();
    const seq = consumesSeq ? ++this.seq : this.seq;
    const epoch = this.epoch;
    return new Promise<number>((resolve, reject) => {
      const mutation: Mutation = { seq, targets: [], resolve, reject };
      for (const slot of this.slots) {
        if (slot.mode === 'ERR') continue;
        const target = new Target(slot, slot.generation);
        mutation.targets.push(target);
        slot.dispatch(what, () => send(slot, epoch, seq), consumesSeq ? seq : undefined, (err) => {
          if (err === undefined) {
            target.acked = true;
          } else {
            if (errorCode(err) === LinkErrorCode.NoSpace) mutation.failure = 'no-space';
            this.failed(slot, target.generation, err, what, epoch);
          }
          this.evaluate(mutation);
        });
      }
      this.pending.add(mutation);
      this.evaluate(mutation);
    });
  }

  private evaluate(mutation: Mutation): void {
    if (!this.pending.has(mutation)) return;
    if (this.fenced) {
      this.finish(mutation, new BlockDeviceError('unavailable', 'volume is owned by a newer controller'));
      return;
    }
    const decision = decideAck(mutation.targets, this.replicaCount);
    if (decision === 'ack') this.finish(mutation);
    else if (decision === 'fail') {
      const kind = mutation.failure === 'no-space' ? 'no-space' : 'unavailable';
      this.finish(mutation, new BlockDeviceError(kind, `seq ${mutation.seq} reached too few replicas to be acknowledged`));
    }
  }

  private finish(mutation: Mutation, err?: Error): void {
    this.pending.delete(mutation);
    if (err) mutation.reject(err);
    else mutation.resolve(mutation.seq);
    if (this.pending.size === 0) {
      const waiters = this.drainWaiters;
      this.drainWaiters = [];
      for (const wake of waiters) wake();
    }
  }
}
