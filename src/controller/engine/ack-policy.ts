/**
 * The one place that decides when a mutation is acknowledged and how replica
 * modes change (DESIGN.md invariants 1 and 6). Pure functions, so the policy is
 * tested as a table and the engine only feeds it facts.
 */

/** RW: whole and serving; WO: rebuilding, receives writes but serves no reads; ERR: out of the write set. */
export type ReplicaMode = 'RW' | 'WO' | 'ERR';

export type VolumeState = 'healthy' | 'degraded' | 'rebuilding' | 'offline';

/** floor(n/2)+1: two of three, three of five. */
export function quorum(replicaCount: number): number {
  return Math.floor(replicaCount / 2) + 1;
}

/** One replica's part in one mutation, with the replica's mode now (not at dispatch). */
export interface TargetState {
  readonly mode: ReplicaMode;
  readonly acked: boolean;
}

export type AckDecision = 'ack' | 'fail' | 'wait';

/**
 * Invariant 1: acknowledge only when every replica that is RW now and was sent
 * the mutation has acknowledged it, and there are at least a quorum of them.
 * A replica that failed has already been moved to ERR, so it no longer counts
 * either way. Once fewer than a quorum of RW targets remain the mutation can
 * never be acknowledged: fail it at once rather than wait (invariant 6).
 */
export function decideAck(targets: readonly TargetState[], replicaCount: number): AckDecision {
  const rw = targets.filter((t) => t.mode === 'RW');
  if (rw.length < quorum(replicaCount)) return 'fail';
  return rw.every((t) => t.acked) ? 'ack' : 'wait';
}

/** Whether mutating commands are accepted at all with this many RW replicas. */
export function canMutate(rwCount: number, replicaCount: number): boolean {
  return rwCount >= quorum(replicaCount);
}

export type ModeEvent =
  /** An I/O failed, timed out or the link dropped. */
  | 'failed'
  /** Start-up found the replica identical to the source. */
  | 'whole'
  /** The replica was prepared and joins the write set to catch up. */
  | 'rebuild-start'
  /** The catch-up copy finished. */
  | 'rebuild-done';

/**
 * Replica mode changes. Only ERR -> WO -> RW leads back into service: a
 * replica never goes straight from ERR to RW while the volume is serving,
 * because it may have missed writes (invariant 5). Events that make no sense
 * in a mode leave it unchanged.
 */
export function nextMode(mode: ReplicaMode, event: ModeEvent): ReplicaMode {
  switch (event) {
    case 'failed':
      return 'ERR';
    case 'whole':
      return mode === 'ERR' ? 'RW' : mode;
    case 'rebuild-start':
      return mode === 'ERR' ? 'WO' : mode;
    case 'rebuild-done':
      return mode === 'WO' ? 'RW' : mode;
  }
}

export function volumeState(modes: readonly ReplicaMode[], replicaCount: number, fenced: boolean): VolumeState {
  const rw = modes.filter((m) => m === 'RW').length;
  if (fenced || !canMutate(rw, replicaCount)) return 'offline';
  if (rw === replicaCount) return 'healthy';
  return modes.includes('WO') ? 'rebuilding' : 'degraded';
}
