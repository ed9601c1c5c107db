import type { EpochRun, ReplicaLinkStatus } from './replica-link';

/**
 * Pure functions over a replica's history (its epoch runs) that decide the
 * truth at start-up (DESIGN.md invariant 4): which replica is the source and
 * where another replica's log stops agreeing with it.
 */

/** The epoch of the record at `seq`, or undefined where the log has no record. */
export function epochAt(runs: readonly EpochRun[], seq: number): number | undefined {
  for (const run of runs) {
    if (seq < run.from) return undefined;
    if (seq <= run.to) return run.epoch;
  }
  return undefined;
}

/** The epoch of the newest record at or below `seq` (0 for an empty log). */
export function lastEpochAtOrBelow(runs: readonly EpochRun[], seq: number): number {
  let epoch = 0;
  for (const run of runs) {
    if (run.from > seq) break;
    epoch = run.epoch;
  }
  return epoch;
}

/**
 * How far a replica's log is known to be whole: up to its rebuild base while a
 * rebuild is unfinished (records above it may have holes), else its last seq.
 */
export function position(status: Pick<ReplicaLinkStatus, 'lastSeq' | 'rebuildBase'>): number {
  return status.rebuildBase === null ? status.lastSeq : Math.min(status.rebuildBase, status.lastSeq);
}

/**
 * The highest seq p such that both logs hold the same epoch (or the same gap)
 * at every seq 1..p, capped at the shorter position. Records at one seq with
 * one epoch are the same record: one controller owns an epoch and stamps each
 * seq once. Both histories are piecewise constant, so only run edges are checked.
 */
export function divergencePoint(
  replica: { runs: readonly EpochRun[]; position: number },
  source: { runs: readonly EpochRun[]; position: number },
): number {
  const limit = Math.min(replica.position, source.position);
  const edges = new Set<number>([1]);
  for (const run of [...replica.runs, ...source.runs]) {
    edges.add(run.from);
    edges.add(run.to + 1);
  }
  const sorted = [...edges].filter((seq) => seq >= 1 && seq <= limit).sort((a, b) => a - b);
  for (const seq of sorted) {
    if (epochAt(replica.runs, seq) !== epochAt(source.runs, seq)) return seq - 1;
  }
  return limit;
}

export interface Candidate {
  readonly id: string;
  readonly status: ReplicaLinkStatus;
}

/**
 * Chooses the source among replicas that answered: the most advanced by
 * (epoch of its last whole record, position), like a log-matching election.
 * Highest promised epoch is deliberately not the key: a replica can promise a
 * new epoch and crash before receiving any write of it. Ties go to the lowest
 * id so every run of the same inputs picks the same replica.
 */
export function chooseSource(candidates: readonly Candidate[]): Candidate | undefined {
  let best: Candidate | undefined;
  let bestKey: [number, number] = [-1, -1];
  for (const candidate of [...candidates].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))) {
    if (candidate.status.state !== 'ok') continue;
    const pos = position(candidate.status);
    const key: [number, number] = [lastEpochAtOrBelow(candidate.status.runs, pos), pos];
    if (key[0] > bestKey[0] || (key[0] === bestKey[0] && key[1] > bestKey[1])) {
      best = candidate;
      bestKey = key;
    }
  }
  return best;
}
