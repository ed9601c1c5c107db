import { hiBlock, hiSegment, hiUnmapped, packHi, distinctChunks, type Chunk, type IndexView } from './block-index';
import { fdatasync, preadFull, pwritevFull } from './fs-io';
import { scanSegment, type ScannedRecord } from './log-scanner';
import type { Checkpointer } from './checkpoint';
import type { StoreCore } from './store-core';
import { BLOCK_SLOT, RECORD_HEADER_SIZE, RecordType, SEGMENT_HEADER_SIZE, SegmentKind, encodeUnmap, encodeWrite, verifyBlock } from './record-codec';
import type { Segment } from './segment-set';
import { deadBytes, markLive, slotOf, type LiveMap } from './space';
import { TokenBucket } from './token-bucket';
import { BLOCK_SIZE } from '../store-types';

/** The store as compaction sees it: its core state and every index view (head and snapshots) that keeps records alive. */
export type CompactionHost = StoreCore & { allViews(): IndexView[]; readonly ckptr: Checkpointer };

export interface CompactionOptions {
  /** Background compaction on a timer (default true). */
  enabled?: boolean;
  intervalMs?: number;
  /** A sealed segment is compacted when at least this share of it is dead (default 0.5). */
  minDeadRatio?: number;
  /** Disk bandwidth compaction may use, read plus write (default 32 MiB/s). */
  bytesPerSecond?: number;
}

export interface CompactionResult {
  segmentsFreed: number;
  bytesFreed: number;
  /** Live bytes copied forward. */
  bytesCopied: number;
}

const NONE: CompactionResult = { segmentsFreed: 0, bytesFreed: 0, bytesCopied: 0 };
const key = (lo: number, block: number): number => lo * 0x10000 + block;

/** Where the copied records went: victim segIdx -> (old key -> new [hi, lo]). */
type Moves = Map<number, Map<number, [number, number]>>;

/**
 * Compaction (DESIGN.md "Replica storage"): picks sealed segments by dead-space
 * ratio, copies their live records forward into a new segment (same epoch and seq,
 * so "higher seq wins" and snapshots see the same history), points every view at
 * the copies, checkpoints, and only then deletes the old files.
 */
export class Compactor {
  /** Exports in progress: segments must not disappear under them. */
  private pins = 0;
  /** Segments compacted away while an export ran: removed when the last export ends. */
  private deferred: Segment[] = [];
  private running: Promise<CompactionResult> | null = null;
  private blocked = 0;
  private timer: NodeJS.Timeout | null = null;
  private bucket = new TokenBucket(32 << 20);
  private minDeadRatio = 0.5;

  constructor(private readonly store: CompactionHost) {}

  pin(): void {
    this.pins++;
  }

  unpin(): void {
    this.pins--;
    if (this.pins === 0) for (const seg of this.deferred.splice(0)) this.store.segs.retire(seg);
  }

  start(opts: CompactionOptions): void {
    this.minDeadRatio = opts.minDeadRatio ?? 0.5;
    this.bucket = new TokenBucket(opts.bytesPerSecond ?? 32 << 20);
    if (opts.enabled === false) return;
    this.timer = setInterval(() => {
      if (this.running || this.pins > 0 || this.blocked > 0 || this.store.state !== 'ok') return;
      this.run().catch((err: unknown) => this.store.logger.warn({ err }, 'background compaction failed'));
    }, opts.intervalMs ?? 10_000);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.blocked++;
    await this.running?.catch(() => undefined);
  }

  /** Runs `fn` with compaction held off (truncation rewrites the same state). */
  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    this.blocked++;
    try {
      await this.running?.catch(() => undefined);
      return await fn();
    } finally {
      this.blocked--;
    }
  }

  run(minDeadRatio = this.minDeadRatio): Promise<CompactionResult> {
    if (this.running) return this.running;
    if (this.pins > 0 || this.blocked > 0) return Promise.resolve(NONE);
    this.running = this.once(minDeadRatio).finally(() => (this.running = null));
    return this.running;
  }

  private pick(live: LiveMap, minDeadRatio: number): Segment[] {
    const s = this.store;
    const budget = s.segmentSize;
    let copy = 0;
    const victims: Segment[] = [];
    const candidates = s.segs
      .all()
      .filter((seg) => seg.sealed && seg !== s.appender.active && seg.size > SEGMENT_HEADER_SIZE)
      .map((seg) => ({ seg, ratio: deadBytes(seg, live) / (seg.size - SEGMENT_HEADER_SIZE) }))
      .filter((c) => c.ratio >= minDeadRatio && c.ratio > 0)
      .sort((a, b) => b.ratio - a.ratio);
    for (const c of candidates) {
      const liveBytes = live.liveBytes.get(c.seg.idx) ?? 0;
      if (victims.length > 0 && copy + liveBytes > budget) break;
      copy += liveBytes;
      victims.push(c.seg);
    }
    return victims;
  }

  private async once(minDeadRatio: number): Promise<CompactionResult> {
    const s = this.store;
    const live = markLive(s.allViews(), (i) => s.segs.get(i));
    const seqAtMark = s.lastSeq;
    const victims = this.pick(live, minDeadRatio);
    if (victims.length === 0) return NONE;
    const moves: Moves = new Map();
    let out: Segment | null = null;
    let dropped = 0;
    try {
      for (const v of victims) {
        const r = await this.copySegment(v, live, moves, () => out, (seg) => (out = seg));
        dropped = Math.max(dropped, r);
      }
      const target = out as Segment | null;
      if (target) {
        await fdatasync(target.fd);
        target.sealed = true;
      }
      if (!this.relocate(new Set(victims.map((v) => v.idx)), moves)) {
        s.logger.warn('compaction found an entry it did not copy; keeping the old segments');
        if (target) s.segs.discard(target.idx);
        return NONE;
      }
    } catch (err) {
      const target = out as Segment | null;
      if (target) s.segs.discard(target.idx);
      throw err;
    }
    const done = out as Segment | null;
    if (done) done.hidden = false;
    s.droppedSeq = Math.max(s.droppedSeq, dropped);
    s.compactedSeq = Math.max(s.compactedSeq, seqAtMark);
    s.clearSeqCache();
    for (const v of victims) v.hidden = true;
    try {
      await s.ckptr.run();
    } catch (err) {
      // The old checkpoint still needs the old segments: keep them until a later checkpoint.
      for (const v of victims) v.hidden = false;
      throw err;
    }
    let freed = 0;
    for (const v of victims) {
      freed += v.size;
      if (this.pins > 0) this.deferred.push(v);
      else s.segs.retire(v);
    }
    const written = (out as Segment | null)?.size ?? 0;
    s.logger.info({ segments: victims.length, freed, written }, 'compacted');
    return { segmentsFreed: victims.length, bytesFreed: Math.max(0, freed - written), bytesCopied: written };
  }

  /** Copies the live records of one victim; returns the highest seq of a record (part) left behind. */
  private async copySegment(v: Segment, live: LiveMap, moves: Moves, getOut: () => Segment | null, setOut: (s: Segment) => void): Promise<number> {
    const s = this.store;
    const records: ScannedRecord[] = [];
    await this.bucket.take(v.size);
    const res = await scanSegment(v, SEGMENT_HEADER_SIZE, v.size, s.blocks, (r) => records.push(r));
    if (res.bad) throw s.fail(`segment ${v.idx} at ${res.end}: ${res.bad}`);
    const map = new Map<number, [number, number]>();
    moves.set(v.idx, map);
    const bits = live.slots.get(v.idx);
    const unmaps = live.unmaps.get(v.idx);
    let dropped = 0;
    for (const r of records) {
      const h = r.header;
      const pieces: { buf: Buffer; lba: number; from: number; count: number; unmap: boolean }[] = [];
      if (h.type === RecordType.Write) {
        let i = 0;
        while (i < h.count) {
          if (!isLive(bits, slotOf(r.offset, i))) {
            dropped = Math.max(dropped, h.seq);
            i++;
            continue;
          }
          let j = i + 1;
          while (j < h.count && isLive(bits, slotOf(r.offset, j))) j++;
          const raw = Buffer.allocUnsafe((j - i) * BLOCK_SLOT);
          await preadFull(v.fd, raw, r.offset + RECORD_HEADER_SIZE + i * BLOCK_SLOT);
          const data = Buffer.allocUnsafe((j - i) * BLOCK_SIZE);
          for (let k = 0; k < j - i; k++) {
            if (!verifyBlock(raw, k * BLOCK_SLOT, h.lba + i + k)) throw s.fail(`bad block crc in segment ${v.idx} at ${r.offset}`);
            raw.copy(data, k * BLOCK_SIZE, k * BLOCK_SLOT + 4, (k + 1) * BLOCK_SLOT);
          }
          pieces.push({ buf: encodeWrite(h.epoch, h.seq, h.lba + i, data), lba: h.lba + i, from: i, count: j - i, unmap: false });
          i = j;
        }
      } else if (h.type === RecordType.Unmap && unmaps?.has(r.offset)) {
        pieces.push({ buf: encodeUnmap(h.epoch, h.seq, h.lba, h.count), lba: h.lba, from: 0, count: 0, unmap: true });
      } else dropped = Math.max(dropped, h.seq);
      for (const p of pieces) {
        let out = getOut();
        if (!out) {
          out = await s.segs.create(SegmentKind.Compact);
          // Out of checkpoints until complete and synced: recovery would find it torn.
          out.hidden = true;
          setOut(out);
        }
        await this.bucket.take(p.buf.length);
        await pwritevFull(out.fd, [p.buf], out.size);
        s.segs.noteSeq(out, h.seq);
        if (p.unmap) map.set(-r.offset - 1, [packHi(out.idx, 0, true), out.size]);
        else for (let k = 0; k < p.count; k++) map.set(key(r.offset, p.from + k), [packHi(out.idx, k, false), out.size]);
        out.size += p.buf.length;
        s.metrics?.compactionBytes.inc({ replica: s.metrics.replica }, p.buf.length);
      }
    }
    return dropped;
  }

  /**
   * Points every entry of every view that refers to a victim at its copy. Runs in
   * one tick; checks first that every such entry was copied, then changes them.
   */
  private relocate(victims: Set<number>, moves: Moves): boolean {
    const chunks = distinctChunks(this.store.allViews());
    const lookup = (hi: number, lo: number): [number, number] | undefined => {
      const m = moves.get(hiSegment(hi));
      return m?.get(hiUnmapped(hi) ? -lo - 1 : key(lo, hiBlock(hi)));
    };
    const visit = (c: Chunk, apply: boolean): boolean => {
      const changes: [number, [number, number]][] = [];
      let ok = true;
      c.scan((i, hi, lo) => {
        if (hi === 0 || !victims.has(hiSegment(hi))) return;
        const to = lookup(hi, lo);
        if (to) changes.push([i, to]);
        else ok = false;
      });
      if (apply) for (const [i, to] of changes) c.update(i, to[0], to[1]);
      return ok;
    };
    for (const c of chunks) if (!visit(c, false)) return false;
    for (const c of chunks) visit(c, true);
    return true;
  }
}

function isLive(bits: Uint8Array | undefined, slot: number): boolean {
  return bits !== undefined && (slot >>> 3) < bits.length && (bits[slot >>> 3] & (1 << (slot & 7))) !== 0;
}
