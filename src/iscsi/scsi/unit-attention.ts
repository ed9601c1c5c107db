import type { Asc } from './sense';
import { SenseKey, buildSense } from './sense';

/** At most this many conditions are queued per I_T nexus and LUN; older ones beyond it are dropped. */
const MAX_PENDING = 8;

interface Pending {
  readonly key: number;
  readonly code: Asc;
  readonly deferred: boolean;
}

/**
 * Unit attention and deferred error conditions, per I_T nexus (SAM-5 §5.14,
 * SPC-4 §5.9). Each one is reported once, oldest first, by the next command
 * that may report it, or returned and cleared by REQUEST SENSE.
 */
export class UnitAttentions {
  private readonly pending = new Map<string, Pending[]>();

  /** Queues a unit attention for one nexus; a duplicate of a queued one is not added twice. */
  add(nexusId: string, code: Asc): void {
    this.push(nexusId, { key: SenseKey.UnitAttention, code, deferred: false });
  }

  /** Queues a deferred error (response code 71h), e.g. a failed SYNCHRONIZE CACHE with IMMED=1. */
  addDeferred(nexusId: string, key: number, code: Asc): void {
    this.push(nexusId, { key, code, deferred: true });
  }

  has(nexusId: string): boolean {
    return (this.pending.get(nexusId)?.length ?? 0) > 0;
  }

  /** Removes and returns the oldest condition as fixed-format sense data. */
  take(nexusId: string): Buffer | undefined {
    const queue = this.pending.get(nexusId);
    const next = queue?.shift();
    if (!next) return undefined;
    if (queue?.length === 0) this.pending.delete(nexusId);
    return buildSense(next.key, next.code, { deferred: next.deferred });
  }

  /** Drops one pending condition of this code, if queued (REPORT LUNS clears REPORTED LUNS DATA HAS CHANGED). */
  clear(nexusId: string, code: Asc): void {
    const queue = this.pending.get(nexusId);
    if (!queue) return;
    const kept = queue.filter((p) => p.code.asc !== code.asc || p.code.ascq !== code.ascq);
    if (kept.length === 0) this.pending.delete(nexusId);
    else this.pending.set(nexusId, kept);
  }

  forget(nexusId: string): void {
    this.pending.delete(nexusId);
  }

  private push(nexusId: string, entry: Pending): void {
    const queue = this.pending.get(nexusId) ?? [];
    const duplicate = queue.some((p) => p.key === entry.key && p.code.asc === entry.code.asc && p.code.ascq === entry.code.ascq);
    if (duplicate) return;
    queue.push(entry);
    if (queue.length > MAX_PENDING) queue.shift();
    this.pending.set(nexusId, queue);
  }
}
