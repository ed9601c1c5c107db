import { TriremeError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { ReplicaControlClient } from '../../replica/client/control-client';
import type { ImageExtent } from '../../replica/store-types';

/** Where a clone's image comes from: a snapshot held by the source volume's replicas. */
export interface CloneSource {
  readonly volume: string;
  readonly snapshot: string;
  /** Data addresses of the source's replicas that hold every write (RW), best first. */
  readonly replicas: readonly string[];
}

/**
 * The epoch the copied records carry: one above every target's, the same on
 * all of them (fresh replicas are at epoch 0, so a first copy uses 1). A copy
 * redone after a crash finds targets already raised by the first attempt,
 * hence the maximum. The new volume's controller raises the epoch above this
 * on its first start, so every write through it is of a later epoch and a
 * higher seq than any copy.
 */
async function cloneEpoch(targets: readonly string[]): Promise<number> {
  let highest = 0;
  for (const address of targets) {
    const client = new ReplicaControlClient(address);
    try {
      highest = Math.max(highest, (await client.status()).epoch);
    } finally {
      client.close();
    }
  }
  return highest + 1;
}

/**
 * Empties the targets of a clone whose earlier copy was cut short (the process
 * that ran it died): a half copy must never be completed or served, and
 * populateClone fills empty replicas only. Targets already empty are left alone.
 */
export async function resetCloneTargets(targets: readonly string[], logger: Logger): Promise<number> {
  let reset = 0;
  for (const address of targets) {
    const client = new ReplicaControlClient(address);
    try {
      const status = await client.status();
      if (status.lastSeq === 0 && status.rebuildBase === null) continue;
      // The replica's own epoch passes its fence; no controller has ever raised it further (none ran yet).
      await client.reset(status.epoch);
      reset++;
      logger.warn({ replica: address, lastSeq: status.lastSeq }, 'clone target emptied to redo a copy that was cut short');
    } finally {
      client.close();
    }
  }
  return reset;
}

/**
 * Fills the fresh replicas of a new volume with a snapshot of another volume,
 * before the new volume's controller ever starts.
 *
 * Why the copies are renumbered 1..N instead of keeping the source's seqs: the
 * new volume has a history of its own. Every replica gets the same records
 * with the same seqs and one epoch run covering them, so the controller's
 * startup sees identical replicas at lastSeq N and stamps its first write N+1;
 * "higher seq wins" then always lets later writes beat the copied data. The
 * image extents of one snapshot never overlap, so their order carries no meaning.
 * Zero extents are skipped: a fresh replica reads zeros everywhere (thin).
 *
 * The copy goes through the replicas' rebuild-target path (BeginRebuild,
 * ApplyExtents, FinishRebuild): a replica that dies mid-copy comes back with
 * its rebuild flag set, and the whole clone is then undone by the caller.
 */
export async function populateClone(source: CloneSource, targets: readonly string[], logger: Logger): Promise<{ extents: number; bytes: number }> {
  const done = [];
  const epoch = await cloneEpoch(targets);
  // One export per target streams the image instead of holding it in memory;
  // a snapshot never changes, so every export yields the same extents in the same order.
  for (const address of targets) done.push(await copyInto(source, address, epoch));
  const first = done[0] ?? { extents: 0, bytes: 0 };
  if (done.some((d) => d.extents !== first.extents || d.bytes !== first.bytes)) {
    throw new TriremeError('ERR_CLONE_DIVERGED', `copies of ${source.volume}@${source.snapshot} differ between replicas`);
  }
  logger.info({ source: `${source.volume}@${source.snapshot}`, ...first }, 'clone populated');
  return first;
}

/** Copies the snapshot into one fresh replica from the first source replica that can export it. */
async function copyInto(source: CloneSource, address: string, epoch: number): Promise<{ extents: number; bytes: number }> {
  const target = new ReplicaControlClient(address);
  try {
    const status = await target.status();
    if (status.lastSeq !== 0) throw new TriremeError('ERR_FAILED_PRECONDITION', `replica ${address} is not empty (lastSeq ${status.lastSeq}): a clone fills fresh replicas only`);
    if (status.epoch < epoch) await target.setEpoch(epoch);
    let last: unknown = new TriremeError('ERR_UNAVAILABLE', `volume "${source.volume}" has no replica in RW mode to copy from`);
    for (const from of source.replicas) {
      const exporter = new ReplicaControlClient(from);
      try {
        await target.beginRebuild(0, epoch);
        const counted = { extents: 0, bytes: 0 };
        await target.applyExtents(epoch, renumbered(exporter.exportImage({ snapshot: source.snapshot }), counted));
        const runs = counted.extents > 0 ? [{ epoch, from: 1, to: counted.extents }] : [];
        await target.finishRebuild(counted.extents, epoch, runs);
        return counted;
      } catch (err) {
        last = err;
        // A partial copy from a source that failed is undone before the next source is tried.
        await target.reset(epoch);
      } finally {
        exporter.close();
      }
    }
    throw new TriremeError('ERR_UNAVAILABLE', `cannot copy snapshot "${source.snapshot}" of volume "${source.volume}": ${(last as Error).message}`, { cause: last });
  } finally {
    target.close();
  }
}

async function* renumbered(image: AsyncIterable<ImageExtent>, counted: { extents: number; bytes: number }): AsyncIterable<ImageExtent> {
  for await (const extent of image) {
    if (extent.type !== 'data') continue;
    counted.extents++;
    counted.bytes += extent.data.length;
    yield { ...extent, seq: counted.extents };
  }
}
