/**
 * The block index: for every block, where its newest record lives. Thin and
 * compact (DESIGN.md "Replica storage": at most ~2 MiB per GiB written):
 * a table of chunks of CHUNK_BLOCKS entries (chunk.ts), a chunk allocated only
 * when a block in it is first written, each entry a pair of 32-bit words:
 *   hi = segIdx (15 bits) << 17 | unmapped (1 bit) << 16 | block index in record (16 bits)
 *   lo = byte offset of the record header in its segment
 * hi = 0 means never written (segment indexes start at 1). Seq is not stored per
 * block: it is in the record header on disk and bounded per segment
 * (StoreCore.wins), which keeps scattered 4k writes at about 6 bytes per block.
 *
 * Snapshots are views sharing chunks copy-on-write: a view may change a chunk in
 * place only if it owns it, so freezing the head is a copy of the chunk table and
 * reading any snapshot is one table lookup, however many snapshots exist.
 */
import { CHUNK_BLOCKS, CHUNK_SHIFT, Chunk } from './chunk';

export { CHUNK_BLOCKS, CHUNK_SHIFT, Chunk } from './chunk';
const CHUNK_MASK = CHUNK_BLOCKS - 1;
export const MAX_SEGMENTS = 0x7fff;
const UNMAP_BIT = 0x10000;

export function packHi(segIdx: number, blockInRecord: number, unmapped: boolean): number {
  return ((segIdx << 17) | (unmapped ? UNMAP_BIT : 0) | (unmapped ? 0 : blockInRecord)) >>> 0;
}
export const hiSegment = (hi: number): number => hi >>> 17;
export const hiUnmapped = (hi: number): boolean => (hi & UNMAP_BIT) !== 0;
export const hiBlock = (hi: number): number => hi & 0xffff;

let nextOwner = 1;

/** One view of the volume: the head or a frozen snapshot. */
export class IndexView {
  table: (Chunk | undefined)[];
  owner = nextOwner++;

  constructor(blocks: number, table?: (Chunk | undefined)[]) {
    this.table = table ?? new Array<Chunk | undefined>(Math.ceil(blocks / CHUNK_BLOCKS)).fill(undefined);
  }

  hi(lba: number): number {
    const c = this.table[lba >>> CHUNK_SHIFT];
    return c ? c.entryHi(lba & CHUNK_MASK) : 0;
  }
  lo(lba: number): number {
    const c = this.table[lba >>> CHUNK_SHIFT];
    return c ? c.entryLo(lba & CHUNK_MASK) : 0;
  }

  /** The chunk holding `lba`, owned by this view (cloned first if shared). */
  private writable(ci: number): Chunk {
    let c = this.table[ci];
    if (!c) c = this.table[ci] = new Chunk(this.owner);
    else if (c.owner !== this.owner) c = this.table[ci] = c.clone(this.owner);
    return c;
  }

  set(lba: number, hi: number, lo: number): void {
    this.writable(lba >>> CHUNK_SHIFT).set(lba & CHUNK_MASK, hi, lo);
  }

  /** Blocks lba .. lba+count-1 get (hi0 + j * step, lo): one record's blocks (Chunk.setRun). */
  setRun(lba: number, count: number, hi0: number, lo: number, step = 1): void {
    let j = 0;
    while (j < count) {
      const at = lba + j;
      const n = Math.min(count - j, CHUNK_BLOCKS - (at & CHUNK_MASK));
      this.writable(at >>> CHUNK_SHIFT).setRun(at & CHUNK_MASK, n, hi0 + j * step, lo, step);
      j += n;
    }
  }

  /** Sets a whole aligned chunk to one entry (a large unmap) without allocating its arrays. */
  fillChunk(ci: number, hi: number, lo: number): void {
    const c = new Chunk(this.owner);
    c.fill(hi, lo);
    this.table[ci] = c;
  }

  /** A frozen copy sharing every chunk; this view stops owning them (copy-on-write). */
  freeze(): IndexView {
    const snap = new IndexView(0, this.table.slice());
    this.owner = nextOwner++;
    return snap;
  }

  /** A new head sharing a snapshot's chunks (revert). */
  static from(view: IndexView): IndexView {
    return new IndexView(0, view.table.slice());
  }

  grow(blocks: number): void {
    const n = Math.ceil(blocks / CHUNK_BLOCKS);
    while (this.table.length < n) this.table.push(undefined);
  }
}

/** Every distinct chunk object of the given views (shared chunks once). */
export function distinctChunks(views: Iterable<IndexView>): Set<Chunk> {
  const set = new Set<Chunk>();
  for (const v of views) for (const c of v.table) if (c) set.add(c);
  return set;
}

/** Memory of the index: each view's table of chunk pointers, then every distinct chunk once. */
export function indexBytes(views: Iterable<IndexView>): number {
  let bytes = 0;
  for (const v of views) bytes += 64 + v.table.length * 8;
  for (const c of distinctChunks(views)) bytes += c.bytes;
  return bytes;
}

export { decodeChunk, encodeChunk } from './chunk-codec';
