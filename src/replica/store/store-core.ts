import fs from 'node:fs';
import { BufferPool } from '../../common/buffer-pool';
import type { Logger } from '../../common/logger';
import { BLOCK_SIZE, type ReplicaState } from '../store-types';
import { Appender } from './appender';
import { CHUNK_BLOCKS, CHUNK_SHIFT, type Chunk, IndexView, hiBlock, hiSegment, hiUnmapped, packHi } from './block-index';
import { EpochRunLog } from './epoch-runs';
import { StoreError } from './errors';
import { preadFull } from './fs-io';
import type { Identity, MetaDb, SnapshotRecordMeta } from './meta-db';
import type { StoreMetrics } from './metrics';
import { ReadPool } from './read-pool';
import { BLOCK_SLOT, RECORD_HEADER_SIZE, RecordType, type RecordTypeValue, decodeRecordHeader, verifyBlock, verifyBlockData } from './record-codec';
import type { Segment, SegmentSet } from './segment-set';

export interface SnapshotEntry {
  meta: SnapshotRecordMeta;
  view: IndexView;
}

/**
 * Memory for write records (and for the scratch of multi-block reads, the same
 * story read the other way): records of 128 KiB and up are reused once written,
 * at most 16 MiB kept. A 1 MiB write is encoded into just over 1 MiB.
 */
export const RECORD_POOL = { minPooled: 128 * 1024, maxKept: 16 * 1024 * 1024 };

/** What a record does to the index, for live appends and replay alike. */
export interface RecordEffect {
  type: RecordTypeValue;
  epoch: number;
  seq: number;
  lba: number;
  count: number;
  name?: string;
  /** A rebuild's copy (applyRecord/applyExtent), or a record replayed above the rebuild base. */
  copy?: boolean;
}

/** Longest run of blocks one read syscall fetches, and the most bytes it reads that no block of the run needs. */
const MAX_READ_RUN = 256;
const MAX_READ_GAP = 8 * 1024;
const SEQ_CACHE_LIMIT = 8192;
const CHUNK_MASK = CHUNK_BLOCKS - 1;

/** Where a block's slot (CRC + data) is in its segment. */
const slotPosition = (hi: number, lo: number): number => lo + RECORD_HEADER_SIZE + hiBlock(hi) * BLOCK_SLOT;

/**
 * State shared by the parts of the store (appends, reads, snapshots, checkpoints,
 * compaction, recovery) and the two rules everything goes through: the index
 * update of an appended record ("higher seq wins" per block, DESIGN.md invariant 5)
 * and the verified read of a run of blocks.
 */
export class StoreCore {
  identity: Identity;
  blocks: number;
  epoch = 0;
  lastSeq = 0;
  durableSeq = 0;
  state: ReplicaState = 'ok';
  errorReason: string | undefined;
  head: IndexView;
  readonly snaps = new Map<string, SnapshotEntry>();
  /** Snapshots in the catalog not yet met during replay (name -> meta). */
  pendingSnaps = new Map<string, SnapshotRecordMeta>();
  droppedSeq = 0;
  revertSeq = 0;
  compactedSeq = 0;
  /** Which epoch wrote each seq (DESIGN.md invariant 4), kept as records are appended. */
  runs = new EpochRunLog();
  /** The persisted rebuild flag (MetaDb), null when the log is whole. */
  rebuildBase: number | null = null;
  lifecycle: 'open' | 'closing' | 'closed' = 'open';
  appender: Appender;
  private readonly seqCache = new Map<number, number>();
  private readonly headerBuf = Buffer.alloc(RECORD_HEADER_SIZE);
  private readonly readPool = new ReadPool();
  /** Scratch of multi-block reads: a 1 MiB read's run would otherwise map fresh memory and fault in 256 pages each time. */
  private readonly runBuffers = new BufferPool({ minPooled: RECORD_POOL.minPooled, maxKept: 4 * 1024 * 1024 });

  constructor(
    readonly dir: string,
    readonly db: MetaDb,
    readonly segs: SegmentSet,
    identity: Identity,
    readonly logger: Logger,
    appender: (core: StoreCore) => Appender,
    public metrics: StoreMetrics | null,
    readonly segmentSize: number,
  ) {
    this.identity = identity;
    this.blocks = identity.size / BLOCK_SIZE;
    this.head = new IndexView(this.blocks);
    this.appender = appender(this);
  }

  /** Puts the replica in the error state: it refuses I/O until rebuilt (DESIGN.md "Replica storage"). */
  fail(reason: string, err?: unknown): StoreError {
    if (this.state !== 'error') {
      this.state = 'error';
      this.errorReason = reason;
      this.logger.error({ err, reason }, 'replica store in error state');
    }
    return new StoreError('ERR_CORRUPT', `replica store unusable: ${this.errorReason ?? reason}`, { cause: err });
  }

  checkOpen(): void {
    if (this.lifecycle !== 'open') throw new StoreError('ERR_CLOSED', 'replica store is closed');
    if (this.state === 'error') throw new StoreError('ERR_CORRUPT', `replica store unusable: ${this.errorReason}`);
  }

  checkRange(offset: number, length: number, size = this.identity.size): void {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
      throw new StoreError('ERR_INVALID_ARGUMENT', `bad range ${offset}+${length}`);
    }
    if (offset % BLOCK_SIZE !== 0 || length % BLOCK_SIZE !== 0) {
      throw new StoreError('ERR_MISALIGNED', `range ${offset}+${length} is not a multiple of ${BLOCK_SIZE}`);
    }
    if (offset + length > size) throw new StoreError('ERR_OUT_OF_RANGE', `range ${offset}+${length} beyond size ${size}`);
  }

  checkSeq(seq: number): void {
    if (!Number.isSafeInteger(seq) || seq < 0) throw new StoreError('ERR_INVALID_ARGUMENT', `bad seq ${seq}`);
  }

  /** The seq of the record an index entry points to: bounds of its segment first, the header on disk if needed. */
  seqOf(hi: number, lo: number): number {
    const seg = this.segs.get(hiSegment(hi));
    if (!seg) return -1;
    if (seg.minSeq === seg.maxSeq) return seg.minSeq;
    const key = seg.idx * 0x100000000 + lo;
    const cached = this.seqCache.get(key);
    if (cached !== undefined) return cached;
    // Synchronous on purpose: index updates run in log order inside one tick, and this
    // is the rare case (a rebuild interleaving with live writes, replay after compaction).
    fs.readSync(seg.fd, this.headerBuf, 0, RECORD_HEADER_SIZE, lo);
    const h = decodeRecordHeader(this.headerBuf);
    const seq = typeof h === 'string' ? -1 : h.seq;
    if (this.seqCache.size >= SEQ_CACHE_LIMIT) this.seqCache.clear();
    this.seqCache.set(key, seq);
    return seq;
  }

  clearSeqCache(): void {
    this.seqCache.clear();
  }

  /** Whether a record with `seq` replaces the entry (hi, lo): the higher seq wins. */
  wins(hi: number, lo: number, seq: number): boolean {
    if (hi === 0) return true;
    const seg = this.segs.get(hiSegment(hi));
    if (!seg) return true;
    if (seq > seg.maxSeq) return true;
    if (seq < seg.minSeq) return false;
    return seq > this.seqOf(hi, lo);
  }

  /** Applies an appended record to the index; runs synchronously in log order. */
  applyAppended(seg: Segment, offset: number, r: RecordEffect): void {
    switch (r.type) {
      case RecordType.Write: {
        // Runs of blocks the record wins go to the index together (IndexView.setRun).
        let i = 0;
        while (i < r.count) {
          let j = i;
          while (j < r.count && this.wins(this.head.hi(r.lba + j), this.head.lo(r.lba + j), r.seq)) j++;
          if (j > i) this.head.setRun(r.lba + i, j - i, packHi(seg.idx, i, false), offset);
          i = j + 1;
        }
        this.noteRun(r);
        break;
      }
      case RecordType.Unmap:
        this.applyUnmap(seg, offset, r);
        this.noteRun(r);
        break;
      case RecordType.Snapshot:
        this.applySnapshot(r);
        break;
      case RecordType.Revert: {
        const snap = this.snaps.get(r.name ?? '');
        if (snap) {
          this.head = IndexView.from(snap.view);
          this.head.grow(this.blocks);
          this.revertSeq = Math.max(this.revertSeq, r.seq);
          // The revert changes every block: replicas agree past it only if both made it.
          this.runs.note(r.epoch, r.seq);
        }
        break;
      }
      case RecordType.Epoch:
        this.epoch = Math.max(this.epoch, r.epoch);
        break;
    }
    this.segs.noteSeq(seg, r.seq);
    if (r.seq > this.lastSeq) this.lastSeq = r.seq;
  }

  /**
   * While a rebuild is unfinished its copies add no runs: an image carries no
   * record epochs and the copy arrives out of order (scattered seqs would
   * split the runs into one per record), and finishRebuild installs the
   * source's history up to the join point anyway. Live writes always count.
   */
  private noteRun(r: RecordEffect): void {
    if (r.copy && this.rebuildBase !== null) return;
    this.runs.note(r.epoch, r.seq);
  }

  private applyUnmap(seg: Segment, offset: number, r: RecordEffect): void {
    const hi = packHi(seg.idx, 0, true);
    let lba = r.lba;
    const end = r.lba + r.count;
    while (lba < end) {
      const ci = lba >>> CHUNK_SHIFT;
      const chunkStart = ci * CHUNK_BLOCKS;
      const chunkEnd = Math.min(chunkStart + CHUNK_BLOCKS, end);
      if (lba === chunkStart && chunkEnd === chunkStart + CHUNK_BLOCKS && this.allWin(chunkStart, r.seq)) {
        this.head.fillChunk(ci, hi, offset);
      } else {
        let b = lba;
        while (b < chunkEnd) {
          let e = b;
          while (e < chunkEnd && this.wins(this.head.hi(e), this.head.lo(e), r.seq)) e++;
          if (e > b) this.head.setRun(b, e - b, hi, offset, 0);
          b = e + 1;
        }
      }
      lba = chunkEnd;
    }
  }

  private allWin(start: number, seq: number): boolean {
    if (!this.head.table[start >>> CHUNK_SHIFT]) return true;
    for (let b = start; b < start + CHUNK_BLOCKS; b++) if (!this.wins(this.head.hi(b), this.head.lo(b), seq)) return false;
    return true;
  }

  /** A snapshot marker freezes the head at its place in the log, if the catalog still holds it. */
  private applySnapshot(r: RecordEffect): void {
    const name = r.name ?? '';
    const meta = this.pendingSnaps.get(name);
    if (!meta || meta.seq !== r.seq) return;
    this.pendingSnaps.delete(name);
    this.snaps.set(name, { meta, view: this.head.freeze() });
  }

  viewFor(snapshot?: string): { view: IndexView; size: number } {
    if (snapshot === undefined) return { view: this.head, size: this.identity.size };
    const snap = this.snaps.get(snapshot);
    if (!snap) throw new StoreError('ERR_NOT_FOUND', `no snapshot ${JSON.stringify(snapshot)}`);
    return { view: snap.view, size: snap.meta.size };
  }

  /**
   * Reads blocks of a view; never-written and unmapped blocks are zeros without any
   * I/O. Blocks that lie in order in one segment are fetched by one pread, across
   * records too: 4k writes appended one after another sit one record header apart,
   * and reading a few bytes (up to MAX_READ_GAP) more is cheaper than another call.
   */
  async readView(view: IndexView, offset: number, length: number): Promise<Buffer> {
    const lba0 = offset / BLOCK_SIZE;
    const out = Buffer.alloc(length);
    const n = length / BLOCK_SIZE;
    const runs: Promise<void>[] = [];
    let i = 0;
    while (i < n) {
      const hi = view.hi(lba0 + i);
      if (hi === 0 || hiUnmapped(hi)) {
        i++;
        continue;
      }
      const seg = hiSegment(hi);
      const first = slotPosition(hi, view.lo(lba0 + i));
      const at = [0];
      let end = first + BLOCK_SLOT;
      let j = i + 1;
      while (j < n && j - i < MAX_READ_RUN) {
        const h = view.hi(lba0 + j);
        if (h === 0 || hiUnmapped(h) || hiSegment(h) !== seg) break;
        const pos = slotPosition(h, view.lo(lba0 + j));
        if (pos < end || pos - end > MAX_READ_GAP) break;
        at.push(pos - first);
        end = pos + BLOCK_SLOT;
        j++;
      }
      runs.push(this.readRun(seg, first, end - first, lba0 + i, at, out, i * BLOCK_SIZE));
      i = j;
    }
    await Promise.all(runs);
    return out;
  }

  /**
   * One block, the common 4k case: one index search, one pread of the block's
   * slot (CRC + data) into pooled memory, one CRC over the data, and the data
   * returned as a view of the slot (no copy, no record header read).
   */
  readOne(view: IndexView, lba: number): Promise<Buffer> {
    const c = view.table[lba >>> CHUNK_SHIFT];
    const at = c ? c.locate(lba & CHUNK_MASK) : -1;
    const hi = c ? c.hiOf(at) : 0;
    if (hi === 0 || hiUnmapped(hi)) return Promise.resolve(Buffer.alloc(BLOCK_SIZE));
    const lo = (c as Chunk).loOf(at);
    const seg = this.segs.get(hiSegment(hi));
    if (!seg) return Promise.reject(this.fail(`index points to missing segment ${hiSegment(hi)}`));
    seg.readers++;
    const pos = this.readPool.take(BLOCK_SLOT, 4);
    const slab = this.readPool.slab;
    return new Promise((resolve, reject) => {
      fs.read(seg.fd, slab, pos, BLOCK_SLOT, slotPosition(hi, lo), (err, n) => {
        this.segs.release(seg);
        if (err) return reject(err);
        if (n !== BLOCK_SLOT) return reject(this.fail(`short read in segment ${seg.idx} at ${lo}`));
        const data = slab.subarray(pos + 4, pos + BLOCK_SLOT);
        if (!verifyBlockData(data, slab.readUInt32LE(pos), lba)) return reject(this.fail(`bad block crc: segment ${seg.idx}, record at ${lo}, lba ${lba}`));
        return resolve(data);
      });
    });
  }

  /** One pread of `len` bytes at `pos`; block k of the run has its slot at at[k] in them. */
  private async readRun(segIdx: number, pos: number, len: number, lba: number, at: number[], out: Buffer, outAt: number): Promise<void> {
    const seg = this.segs.get(segIdx);
    if (!seg) throw this.fail(`index points to missing segment ${segIdx}`);
    seg.readers++;
    // Given back in finally: nothing refers to the scratch once its blocks are copied out and no pread is outstanding.
    const buf = this.runBuffers.take(len);
    try {
      const n = await preadFull(seg.fd, buf, pos);
      if (n !== len) throw this.fail(`short read in segment ${seg.idx} at ${pos}`);
      for (let k = 0; k < at.length; k++) {
        if (!verifyBlock(buf, at[k], lba + k)) throw this.fail(`bad block crc: segment ${seg.idx}, slot at ${pos + at[k]}, lba ${lba + k}`);
        buf.copy(out, outAt + k * BLOCK_SIZE, at[k] + 4, at[k] + BLOCK_SLOT);
      }
    } finally {
      this.runBuffers.give(buf);
      this.segs.release(seg);
    }
  }
}
