import type { Logger } from '../../common/logger';
import { quorum } from './ack-policy';
import { clipRuns } from '../../replica';
import { chooseSource, divergencePoint, position } from './epoch-runs';
import type { ReplicaLinkStatus } from './replica-link';
import type { ReplicaSet } from './replica-set';
import type { ReplicaSlot } from './replica-slot';
import { isInternalSnapshot } from './snapshots';

interface Answer {
  readonly slot: ReplicaSlot;
  readonly status: ReplicaLinkStatus;
}

/** Asks every listed replica for its status; those that fail or time out are left out. */
async function gather(slots: readonly ReplicaSlot[]): Promise<Answer[]> {
  const answers = await Promise.all(
    slots.map((slot) =>
      slot.call('status', () => slot.link.status()).then(
        (status) => ({ slot, status }),
        () => undefined,
      ),
    ),
  );
  return answers.filter((a): a is Answer => a !== undefined && a.status.state === 'ok');
}

/**
 * Takes ownership of the volume and decides the truth (invariants 3 and 4):
 * gathers a quorum, raises the epoch on it (each replica persists it before
 * answering, and refuses anything older from then on), picks the most advanced
 * replica as the source, and puts replicas identical to it in RW. The others
 * stay in ERR; the rebuild truncates their divergent tails and catches them up
 * before they serve. Returns the volume size, or undefined when no quorum
 * answered (the caller retries).
 */
export async function establish(set: ReplicaSet, logger: Logger, wanted: () => boolean = () => true): Promise<number | undefined> {
  const need = quorum(set.replicaCount);
  for (const slot of set.slots) set.setMode(slot, 'failed', 'restart');
  const first = await gather(set.slots);
  // A closed engine (open() gave up) must not raise the epoch behind a successor's back.
  if (first.length < need || !wanted()) return undefined;
  // An engine that owned the volume and finds an epoch above the one it owned
  // was superseded by a newer controller: it stands down rather than take the
  // volume back. (It cannot tell a rival's epoch from its own failed attempt,
  // which promised a number a rival may also hold; the orchestrator restarts it.)
  if (set.ownedEpoch > 0 && first.some((a) => a.status.epoch > set.ownedEpoch)) {
    set.fence();
    return undefined;
  }
  const epoch = Math.max(set.epoch, ...first.map((a) => a.status.epoch)) + 1;
  // Remember the attempt even if it fails, so a retry goes higher than a rival.
  set.epoch = epoch;
  const promised = await Promise.all(first.map((a) => a.slot.call('setEpoch', () => a.slot.link.setEpoch(epoch)).then(() => a.slot, () => undefined)));
  const owned = promised.filter((s): s is ReplicaSlot => s !== undefined);
  if (owned.length < need) {
    logger.warn({ epoch, owned: owned.length, need }, 'could not raise the epoch on a quorum');
    return undefined;
  }
  // Read again: nothing older can change these replicas any more.
  const answers = await gather(owned);
  const chosen = await settleSource(answers, epoch);
  if (answers.length < need || !chosen || !wanted()) return undefined;
  const { source, slot: sourceSlot, top } = chosen;
  // Resizes write no record, so a replica that missed one can still be the
  // source; a resize that was acknowledged reached a quorum, which overlaps
  // this one, and volumes only grow: the largest size is the volume's.
  const size = Math.max(...answers.map((a) => a.status.size));
  if (source.status.size < size && !(await sourceSlot.call('resize', () => sourceSlot.link.resize(epoch, size)).then(() => true, () => false))) return undefined;
  const sourceSnaps = snapshotKey(await sourceSlot.call('listSnapshots', () => sourceSlot.link.listSnapshots()));
  const whole = await Promise.all(answers.filter((a) => a.slot !== sourceSlot).map((a) => isWhole(a, source.status, sourceSnaps, size, epoch)));
  // Never step back: seqs an earlier epoch of this engine stamped stay used (invariant 2).
  set.seq = Math.max(set.seq, top);
  set.ownedEpoch = epoch;
  set.setMode(sourceSlot, 'whole');
  for (const slot of whole) if (slot) set.setMode(slot, 'whole');
  logger.info({ epoch, seq: top, source: sourceSlot.id, size, rw: set.count('RW') }, 'volume established');
  return size;
}

/**
 * Picks the source and makes it whole: a replica caught mid-rebuild is cut
 * back to its rebuild base first. If that cut is refused (its history was
 * compacted), no source is chosen this round: passing over the most advanced
 * replica for a lesser one could drop acknowledged writes, so the volume
 * waits for more replicas instead.
 */
async function settleSource(answers: readonly Answer[], epoch: number): Promise<{ source: Answer; slot: ReplicaSlot; top: number } | undefined> {
  const best = chooseSource(answers.map((a) => ({ id: a.slot.id, status: a.status })));
  const source = answers.find((a) => a.slot.id === best?.id);
  if (!source) return undefined;
  const { slot, status } = source;
  const top = position(status);
  try {
    if (status.lastSeq > top) await slot.call('truncate', () => slot.link.truncateAfter(epoch, top));
    if (status.rebuildBase !== null) await slot.call('finishRebuild', () => slot.link.finishRebuild(epoch, top, clipRuns(status.runs, top)));
    return { source, slot, top };
  } catch {
    return undefined;
  }
}

function snapshotKey(list: readonly { name: string; seq: number }[]): string {
  return list
    .filter((s) => !isInternalSnapshot(s.name))
    .map((s) => `${s.name}@${s.seq}`)
    .sort()
    .join(',');
}

/** A replica may serve at once only if its log, rebuild flag, snapshots and size match the source. */
async function isWhole(answer: Answer, source: ReplicaLinkStatus, sourceSnaps: string, size: number, epoch: number): Promise<ReplicaSlot | undefined> {
  const { slot, status } = answer;
  const top = position(source);
  if (status.rebuildBase !== null || status.lastSeq !== top) return undefined;
  if (divergencePoint({ runs: status.runs, position: status.lastSeq }, { runs: source.runs, position: top }) !== top) return undefined;
  try {
    const snaps = snapshotKey(await slot.call('listSnapshots', () => slot.link.listSnapshots()));
    if (snaps !== sourceSnaps) return undefined;
    if (status.size !== size) await slot.call('resize', () => slot.link.resize(epoch, size));
    return slot;
  } catch {
    return undefined;
  }
}
