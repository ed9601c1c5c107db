import type { EpochRun } from '../store-types';

/**
 * A replica's history as epoch runs: seqs `from..to` (inclusive) all written
 * under `epoch`, sorted, with gaps where the replica never received a record.
 * The controller compares runs to find where two logs diverge (DESIGN.md
 * invariant 4) without shipping the log, so the replica keeps them itself:
 * in memory, extended by every appended write or unmap, persisted with each
 * index checkpoint and rebuilt from the log replayed after it on restart.
 */

export class EpochRunLog {
  private list: EpochRun[];

  constructor(runs: readonly EpochRun[] = []) {
    this.list = runs.map((r) => ({ epoch: r.epoch, from: r.from, to: r.to }));
  }

  get runs(): readonly EpochRun[] {
    return this.list;
  }

  /** Records (epoch, seq). A seq already covered keeps its epoch: one controller stamps each seq once per epoch. */
  note(epoch: number, seq: number): void {
    const last = this.list[this.list.length - 1];
    // The common case, a live write right after the previous one: O(1).
    if (last && seq === last.to + 1 && epoch === last.epoch) {
      this.list[this.list.length - 1] = { epoch, from: last.from, to: seq };
      return;
    }
    if (!last || seq > last.to) {
      this.list.push({ epoch, from: seq, to: seq });
      return;
    }
    // Out of order (a rebuild interleaving with live writes): insert and merge.
    if (this.list.some((r) => seq >= r.from && seq <= r.to)) return;
    const sorted = [...this.list, { epoch, from: seq, to: seq }].sort((a, b) => a.from - b.from);
    this.list = merge(sorted);
  }

  /** Forgets seqs above `upTo` (a truncation). */
  clip(upTo: number): void {
    this.list = clipRuns(this.list, upTo);
  }

  /** Seqs <= upTo take `prefix` (a finished rebuild adopts the source's history), the rest stays. */
  replacePrefix(upTo: number, prefix: readonly EpochRun[]): void {
    const above = this.list.filter((r) => r.to > upTo).map((r) => ({ epoch: r.epoch, from: Math.max(r.from, upTo + 1), to: r.to }));
    this.list = merge([...clipRuns(sortRuns(prefix), upTo), ...above]);
  }
}

/** Checks runs received from outside (a controller): sorted, disjoint, positive safe integers. */
export function validRuns(runs: readonly EpochRun[]): boolean {
  let prev = 0;
  for (const r of runs) {
    if (![r.epoch, r.from, r.to].every((n) => Number.isSafeInteger(n) && n >= 0)) return false;
    if (r.from < 1 || r.to < r.from || r.from <= prev) return false;
    prev = r.to;
  }
  return true;
}

function sortRuns(runs: readonly EpochRun[]): EpochRun[] {
  return [...runs].sort((a, b) => a.from - b.from);
}

/** Runs clipped to seqs <= upTo. */
export function clipRuns(runs: readonly EpochRun[], upTo: number): EpochRun[] {
  const out: EpochRun[] = [];
  for (const r of runs) {
    if (r.from > upTo) break;
    out.push({ epoch: r.epoch, from: r.from, to: Math.min(r.to, upTo) });
  }
  return out;
}

function merge(sorted: readonly EpochRun[]): EpochRun[] {
  const out: EpochRun[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && last.epoch === r.epoch && last.to + 1 === r.from) out[out.length - 1] = { epoch: r.epoch, from: last.from, to: r.to };
    else out.push({ ...r });
  }
  return out;
}
