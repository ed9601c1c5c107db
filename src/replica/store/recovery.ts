import fs from 'node:fs';
import type { Checkpointer } from './checkpoint';
import { fdatasync, ftruncate } from './fs-io';
import { scanSegment, validRecordAfter, type ScannedRecord } from './log-scanner';
import type { Checkpoint } from './meta-db';
import { SEGMENT_HEADER_SIZE, SegmentKind } from './record-codec';
import type { Segment } from './segment-set';
import type { StoreCore } from './store-core';

interface Plan {
  /** Segments the checkpoint covers: verified, not replayed. */
  known: Segment[];
  /** The checkpoint's active segment then every newer live segment, in log order. */
  tail: Segment[];
}

/** Opens every segment file and sorts it into what the checkpoint covers, the tail to replay, and orphans. */
function plan(core: StoreCore, ckpt: Checkpoint | undefined): Plan {
  const known: Segment[] = [];
  const tail: Segment[] = [];
  for (const idx of core.segs.listFiles()) {
    const meta = ckpt?.segments.find((m) => m.idx === idx);
    const seg = core.segs.openExisting(idx, meta);
    if (typeof seg === 'string') {
      // A roll interrupted before its header reached the disk leaves an empty file.
      if (!meta) {
        core.logger.warn({ segment: idx, reason: seg }, 'removing unusable new segment file');
        core.segs.discard(idx);
        continue;
      }
      throw core.fail(`segment ${idx}: ${seg}`);
    }
    const inCkpt = meta !== undefined && meta.gen === seg.gen;
    const replayGen = ckpt?.replayGen ?? 0;
    if (seg.kind === SegmentKind.Live && (seg.gen > replayGen || (inCkpt && seg.gen === replayGen))) {
      seg.size = fs.fstatSync(seg.fd).size;
      tail.push(seg);
    }
    else if (inCkpt) known.push(seg);
    else {
      // Compaction output never committed, or a segment compaction freed before the crash.
      core.logger.info({ segment: idx, gen: seg.gen }, 'removing orphan segment');
      core.segs.discard(idx);
    }
  }
  tail.sort((a, b) => a.gen - b.gen);
  return { known, tail };
}

/**
 * Recovery (DESIGN.md "Replica storage"): loads the last checkpoint, verifies the
 * segments it covers, replays the log after it, cuts a torn tail back to the last
 * good record and puts the replica in the error state for damage anywhere else.
 */
export async function recover(core: StoreCore, ckptr: Checkpointer): Promise<void> {
  core.epoch = await core.db.epoch();
  core.rebuildBase = await core.db.rebuildBase();
  for (const s of await core.db.snapshots()) core.pendingSnaps.set(s.name, s);
  const ckpt = await core.db.checkpoint();
  if (ckpt) await ckptr.load(ckpt);
  const { known, tail } = plan(core, ckpt);
  for (const seg of known) {
    const res = await scanSegment(seg, SEGMENT_HEADER_SIZE, seg.size, core.blocks, null);
    if (res.bad) throw core.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
  }
  for (let i = 0; i < tail.length; i++) {
    const seg = tail[i];
    const last = i === tail.length - 1;
    const fileSize = seg.size;
    const replayFrom = ckpt && seg.gen === ckpt.replayGen ? ckpt.replayOffset : SEGMENT_HEADER_SIZE;
    if (replayFrom > SEGMENT_HEADER_SIZE) {
      const res = await scanSegment(seg, SEGMENT_HEADER_SIZE, replayFrom, core.blocks, null);
      if (res.bad) throw core.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
    }
    // Above an unfinished rebuild's base, copies and live writes look alike in the log;
    // their runs do not matter (position() stops at the base, and the next rebuild cuts there).
    const base = core.rebuildBase;
    const apply = (r: ScannedRecord): void =>
      core.applyAppended(seg, r.offset, { type: r.header.type, epoch: r.header.epoch, seq: r.header.seq, lba: r.header.lba, count: r.header.count, name: r.name, copy: base !== null && r.header.seq > base });
    const res = await scanSegment(seg, replayFrom, fileSize, core.blocks, apply);
    if (res.bad) {
      const torn = last && !(await validRecordAfter(seg, res.end, fileSize, core.blocks));
      if (!torn) throw core.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
      core.logger.warn({ segment: seg.idx, offset: res.end, dropped: fileSize - res.end, reason: res.bad }, 'cutting torn log tail');
      await ftruncate(seg.fd, res.end);
      await fdatasync(seg.fd);
    }
    seg.size = res.end;
    seg.sealed = !last;
  }
  const newest = tail[tail.length - 1];
  if (newest) core.appender.active = newest;
  for (const name of core.pendingSnaps.keys()) {
    core.logger.warn({ snapshot: name }, 'snapshot in catalog without its marker in the log; dropping it');
    await core.db.delSnapshot(name);
  }
  core.pendingSnaps.clear();
  core.durableSeq = core.lastSeq;
  await core.db.delChunks(ckptr.unreferenced(await core.db.chunkIds()));
}
