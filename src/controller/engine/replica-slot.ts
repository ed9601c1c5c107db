import type { Logger } from '../../common/logger';
import type { ReplicaMode } from './ack-policy';
import type { Clock } from './clock';
import { LinkErrorCode, ReplicaLinkError, type ReplicaLink } from './replica-link';

export interface RebuildProgress {
  readonly kind: 'delta' | 'full';
  bytesDone: number;
  bytesTotal: number;
  readonly startedAt: number;
}

/**
 * The engine's runtime view of one replica: its mode, a generation that changes
 * whenever it leaves the write set (so late answers from before the drop never
 * count), and the calls still in flight on its link. Every call has a timeout:
 * a stalled replica is noticed within `timeoutMs` of its oldest request.
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
    this.raw++;
    if (seq !== undefined) this.seqs.set(seq, (this.seqs.get(seq) ?? 0) + 1);
    const settle = (): void => {
      this.raw--;
      if (seq !== undefined) {
        const left = (this.seqs.get(seq) ?? 1) - 1;
        if (left === 0) this.seqs.delete(seq);
        else this.seqs.set(seq, left);
      }
      this.poke();
    };
    let promise: Promise<T>;
    try {
      promise = fn();
    } catch (err) {
      promise = Promise.reject(err);
    }
    promise.then(settle, settle);
    return new Promise<T>((resolve, reject) => {
      const timer = this.clock.setTimer(this.timeoutMs, () => reject(new ReplicaLinkError(LinkErrorCode.Timeout, this.id, `${what} timed out after ${this.timeoutMs} ms`)));
      promise.then(
        (value) => {
          timer.cancel();
          resolve(value);
        },
        (err: unknown) => {
          timer.cancel();
          reject(err);
        },
      );
    });
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
