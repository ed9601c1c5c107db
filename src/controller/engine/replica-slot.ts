import type { Logger } from '../../common/logger';
import type { ReplicaMode } from './ack-policy';
import type { Clock, TimerHandle } from './clock';
import { LinkErrorCode, ReplicaLinkError, type ReplicaLink } from './replica-link';

export interface RebuildProgress {
  readonly kind: 'delta' | 'full';
  bytesDone: number;
  bytesTotal: number;
  readonly startedAt: number;
}

/** How a call ends: `err` set when it failed or timed out, else `value`. */
export type CallDone<T> = (err: unknown, value?: T) => void;

/** One call in flight whose deadline has not passed yet. */
interface Deadline {
  readonly at: number;
  readonly what: string;
  readonly done: CallDone<never>;
}

/**
 * The engine's runtime view of one replica: its mode, a generation that changes
 * whenever it leaves the write set (so late answers from before the drop never
 * count), and the calls still in flight on its link. Every call has a timeout:
 * a stalled replica is noticed within `timeoutMs` of its oldest request.
 *
 * Timeouts cost one timer per slot, not one per call: every call gets the
 * same timeout on a monotonic clock, so the set of open deadlines (insertion
 * ordered) is also in deadline order, and one timer aimed at the oldest
 * deadline finds every expired call. A timer per call was a measurable share
 * of the controller's CPU time at 30,000 replica requests a second.
 */
export class ReplicaSlot {
  mode: ReplicaMode = 'ERR';
  generation = 0;
  lastError: string | undefined;
  rebuild: RebuildProgress | undefined;
  /** Reads in flight, to send the next read to the least busy replica. */
  reads = 0;
  /** Smoothed read latency in ms, to steer reads away from a slow replica. */
  latencyMs = 0;
  private raw = 0;
  private readonly seqs = new Map<number, number>();
  private readonly deadlines = new Set<Deadline>();
  private sweeper: TimerHandle | undefined;
  private waiters: Array<() => void> = [];
  readonly logger: Logger;

  constructor(
    readonly link: ReplicaLink,
    private readonly clock: Clock,
    private readonly timeoutMs: number,
    logger: Logger,
  ) {
    this.logger = logger.child({ replica: link.id });
  }

  get id(): string {
    return this.link.id;
  }

  /** Link calls not yet settled, counting those the engine already gave up on. */
  get outstanding(): number {
    return this.raw;
  }

  /**
   * Runs one call on the link. Rejects with ERR_TIMEOUT after the timeout, but
   * keeps counting the call as outstanding until the link itself settles it:
   * a rebuild must not start while old requests may still land on the replica.
   */
  call<T>(what: string, fn: () => Promise<T>, seq?: number): Promise<T> {
    return new Promise<T>((resolve, reject) => this.dispatch<T>(what, fn, seq, (err, value) => (err === undefined ? resolve(value as T) : reject(err))));
  }

  /**
   * call() with a callback instead of a promise (the write path runs one per
   * replica per write): `done` runs exactly once, with the link's outcome or
   * with ERR_TIMEOUT, whichever comes first. `seq` marks a mutation for
   * settledBelow().
   */
  dispatch<T>(what: string, fn: () => Promise<T>, seq: number | undefined, done: CallDone<T>): void {
    this.raw++;
    if (seq !== undefined) this.seqs.set(seq, (this.seqs.get(seq) ?? 0) + 1);
    const deadline: Deadline = { at: this.clock.now() + this.timeoutMs, what, done: done as CallDone<never> };
    this.deadlines.add(deadline);
    if (this.sweeper === undefined) this.arm();
    let promise: Promise<T>;
    try {
      promise = fn();
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(
      (value) => this.settle(deadline, seq, undefined, value),
      (err: unknown) => this.settle(deadline, seq, err ?? new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, `${what} failed`)),
    );
  }

  private settle<T>(deadline: Deadline, seq: number | undefined, err: unknown, value?: T): void {
    this.raw--;
    if (seq !== undefined) {
      const left = (this.seqs.get(seq) ?? 1) - 1;
      if (left === 0) this.seqs.delete(seq);
      else this.seqs.set(seq, left);
    }
    this.poke();
    // A call that already timed out was answered then; its late outcome only settles the count.
    if (this.deadlines.delete(deadline)) (deadline.done as CallDone<T>)(err, value);
  }

  /** Fails every call whose deadline passed, then aims the timer at the oldest one left. */
  private sweep(): void {
    this.sweeper = undefined;
    const now = this.clock.now();
    for (const deadline of this.deadlines) {
      if (deadline.at > now) break;
      this.deadlines.delete(deadline);
      deadline.done(new ReplicaLinkError(LinkErrorCode.Timeout, this.id, `${deadline.what} timed out after ${this.timeoutMs} ms`));
    }
    // A call dispatched by a callback above may have armed the timer already.
    if (this.sweeper === undefined) this.arm();
  }

  private arm(): void {
    const oldest = this.deadlines.values().next();
    if (oldest.done) return;
    this.sweeper = this.clock.setTimer(Math.max(0, oldest.value.at - this.clock.now()), () => this.sweep());
  }

  /** Re-checks every waiter (after a call settles or the mode changes). */
  poke(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const wake of waiters) wake();
  }

  /** Resolves once `done()` holds, re-checked whenever a call settles or poke() runs. */
  until(done: () => boolean): Promise<void> {
    if (done()) return Promise.resolve();
    return new Promise((resolve) => {
      const check = (): void => {
        if (done()) resolve();
        else this.waiters.push(check);
      };
      this.waiters.push(check);
    });
  }

  /** Every call issued so far has settled on the link. */
  idle(): Promise<void> {
    return this.until(() => this.raw === 0);
  }

  /**
   * No mutation with seq below `seq` is still in flight on this link, or the
   * replica left the write set (generation changed) so it no longer matters.
   */
  settledBelow(seq: number, generation: number): Promise<void> {
    return this.until(() => {
      if (this.generation !== generation) return true;
      for (const s of this.seqs.keys()) if (s < seq) return false;
      return true;
    });
  }

  recordReadLatency(ms: number): void {
    this.latencyMs = this.latencyMs === 0 ? ms : this.latencyMs * 0.8 + ms * 0.2;
  }
}
