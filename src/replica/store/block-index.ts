/**
 * The block index: for every block, where its newest record lives. Thin and
 * compact (DESIGN.md "Replica storage": at most ~2 MiB per GiB written):
 * a table of chunks of CHUNK_BLOCKS entries, a chunk allocated only when a block
 * in it is first written, and each entry 8 bytes in two Uint32Arrays:
 *   hi = segIdx (15 bits) << 17 | unmapped (1 bit) << 16 | block index in record (16 bits)
 *   lo = byte offset of the record header in its segment
 * hi = 0 means never written (segment indexes start at 1). Seq is not stored per
 * block: it is in the record header on disk and bounded per segment
 * (see seq-oracle.ts), which keeps 4k random writes at 8 bytes per block.
 *
 * Snapshots are views sharing chunks copy-on-write: a view may change a chunk in
 * place only if it owns it, so freezing the head is a copy of the chunk table and
 * reading any snapshot is one table lookup, however many snapshots exist.
 */
export const CHUNK_SHIFT = 10;
export const CHUNK_BLOCKS = 1 << CHUNK_SHIFT;
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

export class Chunk {
  hi: Uint32Array | null = null;
  lo: Uint32Array | null = null;
  fillHi = 0;
  fillLo = 0;
  /** Key of this chunk's content in the last checkpoint; 0 once changed since (checkpoint.ts). */
  persistedId = 0;
  constructor(public owner: number) {}

  entryHi(i: number): number {
    return this.hi ? this.hi[i] : this.fillHi;
  }
  entryLo(i: number): number {
    return this.lo ? this.lo[i] : this.fillLo;
  }
  set(i: number, hi: number, lo: number): void {
    if (!this.hi || !this.lo) {
      this.hi = new Uint32Array(CHUNK_BLOCKS).fill(this.fillHi);
      this.lo = new Uint32Array(CHUNK_BLOCKS).fill(this.fillLo);
    }
    this.hi[i] = hi;
    this.lo[i] = lo;
    this.persistedId = 0;
  }
  fill(hi: number, lo: number): void {
    this.hi = null;
    this.lo = null;
    this.fillHi = hi;
    this.fillLo = lo;
    this.persistedId = 0;
  }
  clone(owner: number): Chunk {
    const c = new Chunk(owner);
    c.fillHi = this.fillHi;
    c.fillLo = this.fillLo;
    if (this.hi && this.lo) {
      c.hi = this.hi.slice();
      c.lo = this.lo.slice();
    }
    return c;
  }
  get bytes(): number {
    return this.hi ? CHUNK_BLOCKS * 8 : 0;
  }
}

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

export function indexBytes(views: Iterable<IndexView>): number {
  let bytes = 0;
  let tables = 0;
  for (const v of views) tables += v.table.length * 8;
  for (const c of distinctChunks(views)) bytes += c.bytes + 32;
  return bytes + tables;
}

/** Chunk serialization for checkpoints: flag u8 (0 = fill, 1 = arrays), then the entries. */
export function encodeChunk(c: Chunk): Buffer {
  if (!c.hi || !c.lo) {
    const b = Buffer.alloc(9);
    b.writeUInt32LE(c.fillHi, 1);
    b.writeUInt32LE(c.fillLo, 5);
    return b;
  }
  const b = Buffer.alloc(1 + CHUNK_BLOCKS * 8);
  b[0] = 1;
  Buffer.from(c.hi.buffer, c.hi.byteOffset, c.hi.byteLength).copy(b, 1);
  Buffer.from(c.lo.buffer, c.lo.byteOffset, c.lo.byteLength).copy(b, 1 + CHUNK_BLOCKS * 4);
  return b;
}

export function decodeChunk(b: Uint8Array, owner: number): Chunk | null {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  const c = new Chunk(owner);
  if (buf.length === 9 && buf[0] === 0) {
    c.fill(buf.readUInt32LE(1), buf.readUInt32LE(5));
    return c;
  }
  if (buf.length !== 1 + CHUNK_BLOCKS * 8 || buf[0] !== 1) return null;
  const copy = Buffer.from(buf.subarray(1));
  c.hi = new Uint32Array(copy.buffer, copy.byteOffset, CHUNK_BLOCKS).slice();
  c.lo = new Uint32Array(copy.buffer, copy.byteOffset + CHUNK_BLOCKS * 4, CHUNK_BLOCKS).slice();
  return c;
}
