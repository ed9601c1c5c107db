import { IndexView } from './block-index';
import { EpochRunLog } from './epoch-runs';
import { StoreError } from './errors';
import { fdatasync, ftruncate } from './fs-io';
import { scanSegment } from './log-scanner';
import type { StoreHost } from './store-host';
import { RecordType, SEGMENT_HEADER_SIZE, SegmentKind } from './record-codec';
import type { Segment } from './segment-set';

/**
 * Cuts the log back to `seq` (DESIGN.md invariant 4: a divergent, never
 * acknowledged tail from an older epoch). The live log is cut at its first record
 * with a higher seq and the head is rebuilt from every remaining record, the
 * higher seq winning per block. Refused with ERR_NOT_FOUND (the caller rebuilds
 * in full) when a revert or a compaction makes that rebuild unsound.
 */
export async function truncateAfter(store: StoreHost, seq: number): Promise<void> {
  if (seq >= store.lastSeq) return;
  await store.compactor.exclusive(async () => {
    if (store.revertSeq > 0) throw new StoreError('ERR_NOT_FOUND', `cannot truncate across a revert (seq ${store.revertSeq}); rebuild in full`);
    if (seq < store.compactedSeq) throw new StoreError('ERR_NOT_FOUND', `records before seq ${store.compactedSeq} were compacted; rebuild in full`);
    await store.appender.pause();
    try {
      await cut(store, seq);
      // The history up to seq stays as it was (a finished rebuild's adopted runs included).
      store.runs.clip(seq);
      const kept = new EpochRunLog(store.runs.runs);
      await rebuildHead(store, seq);
      store.runs = kept;
      for (const [name, s] of store.snaps) {
        if (s.meta.seq <= seq) continue;
        await store.db.delSnapshot(name);
        store.snaps.delete(name);
      }
      // Below the rebuild base, what is left is a whole prefix again.
      if (store.rebuildBase !== null && seq < store.rebuildBase) {
        await store.db.putRebuildBase(null);
        store.rebuildBase = null;
      }
    } finally {
      store.appender.resume();
    }
    await store.ckptr.run();
  });
}

async function cut(store: StoreHost, seq: number): Promise<void> {
  const segs = store.segs.all();
  for (const seg of segs) {
    if (seg.kind !== SegmentKind.Live && seg.maxSeq > seq) {
      throw new StoreError('ERR_NOT_FOUND', `compacted records after seq ${seq}; rebuild in full`);
    }
  }
  let cutAt: { seg: Segment; offset: number } | null = null;
  for (const seg of segs.filter((s) => s.kind === SegmentKind.Live)) {
    if (cutAt) {
      // Everything in newer live segments follows the cut.
      store.segs.retire(seg);
      if (store.appender.active === seg) store.appender.active = cutAt.seg;
      continue;
    }
    if (seg.maxSeq <= seq) continue;
    let first = -1;
    const res = await scanSegment(seg, SEGMENT_HEADER_SIZE, seg.size, store.blocks, (r) => {
      if (first < 0 && r.header.seq > seq) first = r.offset;
    });
    if (res.bad) throw store.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
    if (first < 0) continue;
    await ftruncate(seg.fd, first);
    await fdatasync(seg.fd);
    seg.size = first;
    seg.sealed = false;
    cutAt = { seg, offset: first };
    if (store.appender.active !== seg) store.appender.active = seg;
  }
}

/** The head as "newest record per block" over every remaining write and unmap. */
async function rebuildHead(store: StoreHost, seq: number): Promise<void> {
  store.head = new IndexView(store.blocks);
  store.clearSeqCache();
  let last = 0;
  for (const seg of store.segs.all()) {
    seg.minSeq = Infinity;
    seg.maxSeq = -Infinity;
    const res = await scanSegment(seg, SEGMENT_HEADER_SIZE, seg.size, store.blocks, (r) => {
      const h = r.header;
      if (h.seq > seq) return;
      if (h.type === RecordType.Write || h.type === RecordType.Unmap) {
        store.applyAppended(seg, r.offset, { type: h.type, epoch: h.epoch, seq: h.seq, lba: h.lba, count: h.count });
      } else store.segs.noteSeq(seg, h.seq);
      last = Math.max(last, h.seq);
    });
    if (res.bad) throw store.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
  }
  store.lastSeq = last;
  store.durableSeq = Math.min(store.durableSeq, last);
}

/**
 * Empties the replica for a full rebuild: no records, no snapshots, no
 * rebuild flag, lastSeq 0; identity, size and epoch (in LevelDB) stay. Unlike
 * truncateAfter it needs no history, so a revert or a compaction cannot make
 * it fail. Crash-safe by ordering: the checkpoint naming only a fresh, empty
 * segment is committed first; old segments not in it are orphans to recovery.
 */
export async function resetStore(store: StoreHost): Promise<void> {
  await store.compactor.exclusive(async () => {
    await store.appender.pause();
    try {
      const old = store.segs.all();
      const fresh = await store.segs.create(SegmentKind.Live);
      for (const seg of old) seg.hidden = true;
      store.appender.active = fresh;
      store.head = new IndexView(store.blocks);
      store.clearSeqCache();
      const names = [...store.snaps.keys()];
      store.snaps.clear();
      store.lastSeq = 0;
      store.durableSeq = 0;
      store.droppedSeq = 0;
      store.revertSeq = 0;
      store.compactedSeq = 0;
      store.runs = new EpochRunLog();
      // Half-reset memory must not serve: the replica stops until rebuilt.
      await store.ckptr.run().catch((err: unknown) => {
        throw store.fail('reset could not be committed', err);
      });
      for (const name of names) await store.db.delSnapshot(name);
      await store.db.putRebuildBase(null);
      store.rebuildBase = null;
      for (const seg of old) {
        seg.hidden = false;
        store.segs.retire(seg);
      }
    } finally {
      store.appender.resume();
    }
  });
}
