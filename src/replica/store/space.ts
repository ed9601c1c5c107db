import { BLOCK_SIZE } from '../store-types';
import { CHUNK_BLOCKS, type Chunk, type IndexView, distinctChunks, hiBlock, hiSegment, hiUnmapped } from './block-index';
import { BLOCK_SLOT, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE } from './record-codec';
import type { Segment } from './segment-set';

/** Live bytes of each segment, found by marking every entry of every view once. */
export interface LiveMap {
  /** segIdx -> bitmap of live block slots (slot = data position / BLOCK_SLOT). */
  slots: Map<number, Uint8Array>;
  /** segIdx -> offsets of unmap records still referenced. */
  unmaps: Map<number, Set<number>>;
  liveBytes: Map<number, number>;
}

export const slotOf = (lo: number, block: number): number => Math.floor((lo + RECORD_HEADER_SIZE + block * BLOCK_SLOT) / BLOCK_SLOT);

function markChunk(c: Chunk, segs: (idx: number) => Segment | undefined, live: LiveMap): void {
  c.scan((_i, hi, lo) => {
    if (hi === 0) return;
    const idx = hiSegment(hi);
    if (hiUnmapped(hi)) {
      let set = live.unmaps.get(idx);
      if (!set) live.unmaps.set(idx, (set = new Set()));
      if (!set.has(lo)) {
        set.add(lo);
        live.liveBytes.set(idx, (live.liveBytes.get(idx) ?? 0) + RECORD_HEADER_SIZE);
      }
      return;
    }
    let bits = live.slots.get(idx);
    if (!bits) {
      const seg = segs(idx);
      bits = new Uint8Array(Math.ceil(((seg?.size ?? 0) / BLOCK_SLOT + 2) / 8));
      live.slots.set(idx, bits);
    }
    const slot = slotOf(lo, hiBlock(hi));
    const byte = slot >>> 3;
    const bit = 1 << (slot & 7);
    if (byte < bits.length && (bits[byte] & bit) === 0) {
      bits[byte] |= bit;
      live.liveBytes.set(idx, (live.liveBytes.get(idx) ?? 0) + BLOCK_SLOT);
    }
  });
}

export function markLive(views: IndexView[], segs: (idx: number) => Segment | undefined): LiveMap {
  const live: LiveMap = { slots: new Map(), unmaps: new Map(), liveBytes: new Map() };
  for (const c of distinctChunks(views)) markChunk(c, segs, live);
  return live;
}

/** Bytes a segment holds that no view needs (headers of live records count as dead: they are small). */
export function deadBytes(seg: Segment, live: LiveMap): number {
  return Math.max(0, seg.size - SEGMENT_HEADER_SIZE - (live.liveBytes.get(seg.idx) ?? 0));
}

/** Blocks of a view that hold data (not zero, not unmapped). */
export function writtenBlocks(view: IndexView): number {
  let n = 0;
  for (const c of view.table) if (c) n += c.count((hi) => hi !== 0 && !hiUnmapped(hi));
  return n;
}

/**
 * Bytes only `view` keeps alive among `others` (the neighbouring snapshots and
 * the head): a block record is shared by views taken while it was current, so
 * comparing with the neighbours in time finds what deleting this one frees.
 */
export function exclusiveBytes(view: IndexView, others: IndexView[]): number {
  let n = 0;
  for (let ci = 0; ci < view.table.length; ci++) {
    const c = view.table[ci];
    if (!c) continue;
    const peers = others.map((o) => o.table[ci]).filter((p): p is Chunk => p !== undefined);
    if (peers.includes(c)) continue;
    for (let i = 0; i < CHUNK_BLOCKS; i++) {
      const hi = c.entryHi(i);
      if (hi === 0 || hiUnmapped(hi)) continue;
      const lo = c.entryLo(i);
      if (!peers.some((p) => p.entryHi(i) === hi && p.entryLo(i) === lo)) n++;
    }
  }
  return n * BLOCK_SIZE;
}
