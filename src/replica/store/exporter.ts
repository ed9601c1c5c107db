import { BLOCK_SIZE, type ImageExtent, type LogRecord } from '../store-types';
import { CHUNK_BLOCKS, CHUNK_SHIFT, type IndexView, hiBlock, hiUnmapped } from './block-index';
import { StoreError } from './errors';
import { preadFull } from './fs-io';
import { scanSegment } from './log-scanner';
import { BLOCK_SLOT, RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, type RecordHeader, verifyBlock } from './record-codec';
import type { Segment } from './segment-set';
import type { StoreHost } from './store-host';

/** Largest data extent exportImage yields. */
const MAX_EXTENT_BLOCKS = 256;

interface Found {
  seg: Segment;
  offset: number;
  header: RecordHeader;
  name?: string;
}

/**
 * Records with seq > afterSeq in seq order, for a delta rebuild (DESIGN.md
 * invariant 5). Segments are pinned against compaction while this runs.
 */
export async function* exportRecords(store: StoreHost, afterSeq: number): AsyncGenerator<LogRecord> {
  if (!Number.isSafeInteger(afterSeq) || afterSeq < 0) throw new StoreError('ERR_INVALID_ARGUMENT', `bad seq ${afterSeq}`);
  if (afterSeq < store.droppedSeq) throw new StoreError('ERR_NOT_FOUND', `records after seq ${afterSeq} were compacted away (up to ${store.droppedSeq})`);
  if (afterSeq < store.revertSeq) throw new StoreError('ERR_NOT_FOUND', `a revert at seq ${store.revertSeq} cannot be replayed as records`);
  store.compactor.pin();
  try {
    const found: Found[] = [];
    for (const seg of store.segs.all()) {
      if (seg.maxSeq <= afterSeq) continue;
      const res = await scanSegment(seg, SEGMENT_HEADER_SIZE, seg.size, store.blocks, (r) => {
        if (r.header.seq > afterSeq) found.push({ seg, offset: r.offset, header: r.header, name: r.name });
      });
      if (res.bad) throw store.fail(`segment ${seg.idx} at ${res.end}: ${res.bad}`);
    }
    found.sort((a, b) => a.header.seq - b.header.seq || a.seg.gen - b.seg.gen || a.offset - b.offset);
    for (const f of found) {
      const rec = await toLogRecord(store, f);
      if (rec) yield rec;
    }
  } finally {
    store.compactor.unpin();
  }
}

async function toLogRecord(store: StoreHost, f: Found): Promise<LogRecord | null> {
  const h = f.header;
  switch (h.type) {
    case RecordType.Write: {
      const raw = Buffer.allocUnsafe(h.count * BLOCK_SLOT);
      const n = await preadFull(f.seg.fd, raw, f.offset + RECORD_HEADER_SIZE);
      if (n !== raw.length) throw store.fail(`short read in segment ${f.seg.idx}`);
      const data = Buffer.allocUnsafe(h.count * BLOCK_SIZE);
      for (let i = 0; i < h.count; i++) {
        if (!verifyBlock(raw, i * BLOCK_SLOT, h.lba + i)) throw store.fail(`bad block crc in segment ${f.seg.idx} at ${f.offset}`);
        raw.copy(data, i * BLOCK_SIZE, i * BLOCK_SLOT + 4, (i + 1) * BLOCK_SLOT);
      }
      return { type: 'write', epoch: h.epoch, seq: h.seq, offset: h.lba * BLOCK_SIZE, data };
    }
    case RecordType.Unmap:
      return { type: 'unmap', epoch: h.epoch, seq: h.seq, offset: h.lba * BLOCK_SIZE, length: h.count * BLOCK_SIZE };
    case RecordType.Snapshot: {
      // Only snapshots that still exist, taken at this marker.
      const snap = store.snaps.get(f.name ?? '');
      return snap && snap.meta.seq === h.seq ? { type: 'snapshot', epoch: h.epoch, seq: h.seq, name: f.name ?? '' } : null;
    }
    case RecordType.Epoch:
      return { type: 'epoch', epoch: h.epoch, seq: h.seq };
    default:
      return null;
  }
}

type Kind = 'data' | 'zero' | 'skip';

/**
 * The image of a snapshot (or the head) as extents: data runs read from the log,
 * zero runs for unmapped or never-written blocks. With `base`, only blocks whose
 * record differs from the base's are yielded (a diff between two points in time).
 */
export async function* exportImage(store: StoreHost, options: { snapshot?: string; base?: string }): AsyncGenerator<ImageExtent> {
  const { view, size } = store.viewFor(options.snapshot);
  const base = options.base !== undefined ? store.viewFor(options.base).view : null;
  const blocks = size / BLOCK_SIZE;
  store.compactor.pin();
  try {
    let lba = 0;
    while (lba < blocks) {
      const ci = lba >>> CHUNK_SHIFT;
      if (!view.table[ci] && (!base || !base.table[ci]) && lba % CHUNK_BLOCKS === 0) {
        // A never-written chunk: nothing in a diff, zeros in a full image.
        const n = Math.min(CHUNK_BLOCKS, blocks - lba);
        if (!base) yield { type: 'zero', offset: lba * BLOCK_SIZE, length: n * BLOCK_SIZE, seq: 0 };
        lba += n;
        continue;
      }
      const kind = classify(view, base, lba);
      const hi = view.hi(lba);
      const lo = view.lo(lba);
      let n = 1;
      const limit = kind === 'data' ? MAX_EXTENT_BLOCKS : CHUNK_BLOCKS;
      while (lba + n < blocks && n < limit && (lba + n) >>> CHUNK_SHIFT === ci && classify(view, base, lba + n) === kind && sameRun(view, lba + n, hi, lo, n, kind)) n++;
      if (kind === 'data') {
        const data = await store.readView(view, lba * BLOCK_SIZE, n * BLOCK_SIZE);
        yield { type: 'data', offset: lba * BLOCK_SIZE, data, seq: store.seqOf(hi, lo) };
      } else if (kind === 'zero') {
        yield { type: 'zero', offset: lba * BLOCK_SIZE, length: n * BLOCK_SIZE, seq: hi === 0 ? 0 : store.seqOf(hi, lo) };
      }
      lba += n;
    }
  } finally {
    store.compactor.unpin();
  }
}

function classify(view: IndexView, base: IndexView | null, lba: number): Kind {
  const hi = view.hi(lba);
  const zero = hi === 0 || hiUnmapped(hi);
  if (base) {
    const bhi = base.hi(lba);
    if (bhi === hi && base.lo(lba) === view.lo(lba)) return 'skip';
    if (zero && (bhi === 0 || hiUnmapped(bhi)) && hi === 0) return 'skip';
  }
  return zero ? 'zero' : 'data';
}

/** Whether block lba continues the run that started n blocks earlier with entry (hi, lo). */
function sameRun(view: IndexView, lba: number, hi: number, lo: number, n: number, kind: Kind): boolean {
  if (kind === 'skip') return true;
  const h = view.hi(lba);
  if (kind === 'zero') return h === hi && view.lo(lba) === lo;
  return h === hi + n && hiBlock(hi) + n <= 0xffff && view.lo(lba) === lo;
}
