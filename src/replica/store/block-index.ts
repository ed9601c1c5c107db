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
/**
 * A chunk keeps up to SPARSE_MAX entries as sorted (index, hi, lo) triples (10 bytes
 * each) and turns dense (8 bytes x CHUNK_BLOCKS) beyond: 4k writes scattered one per
 * chunk then cost tens of bytes each instead of a whole 8 KiB chunk, and no chunk
 * ever costs more than ~11 bytes per entry it holds.
 */
const SPARSE_MAX = 768;

export class Chunk {
  /** Dense form. */
  hi: Uint32Array | null = null;
  lo: Uint32Array | null = null;
  /** Sparse form: keys sorted, n used. */
  private keys: Uint16Array | null = null;
  private shi: Uint32Array | null = null;
  private slo: Uint32Array | null = null;
  private n = 0;
  /** The entry of every block the chunk holds no entry for. */
  fillHi = 0;
  fillLo = 0;
  /** Key of this chunk's content in the last checkpoint; 0 once changed since (checkpoint.ts). */
  persistedId = 0;
  constructor(public owner: number) {}

  private find(i: number): number {
    const keys = this.keys as Uint16Array;
    let a = 0;
    let b = this.n - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const k = keys[m];
      if (k === i) return m;
      if (k < i) a = m + 1;
      else b = m - 1;
    }
    return -a - 1;
  }

  entryHi(i: number): number {
    if (this.hi) return this.hi[i];
    if (this.n > 0) {
      const k = this.find(i);
      if (k >= 0) return (this.shi as Uint32Array)[k];
    }
    return this.fillHi;
  }
  entryLo(i: number): number {
    if (this.lo) return this.lo[i];
    if (this.n > 0) {
      const k = this.find(i);
      if (k >= 0) return (this.slo as Uint32Array)[k];
    }
    return this.fillLo;
  }

  set(i: number, hi: number, lo: number): void {
    this.persistedId = 0;
    if (this.hi && this.lo) {
      this.hi[i] = hi;
      this.lo[i] = lo;
      return;
    }
    let k = this.n > 0 ? this.find(i) : -1;
    if (k >= 0) {
      (this.shi as Uint32Array)[k] = hi;
      (this.slo as Uint32Array)[k] = lo;
      return;
    }
    if (this.n >= SPARSE_MAX) {
      this.densify();
      this.set(i, hi, lo);
      return;
    }
    k = -k - 1;
    if (!this.keys || this.n === this.keys.length) this.grow();
    const keys = this.keys as Uint16Array;
    const shi = this.shi as Uint32Array;
    const slo = this.slo as Uint32Array;
    keys.copyWithin(k + 1, k, this.n);
    shi.copyWithin(k + 1, k, this.n);
    slo.copyWithin(k + 1, k, this.n);
    keys[k] = i;
    shi[k] = hi;
    slo[k] = lo;
    this.n++;
  }

  private grow(): void {
    const cap = Math.min(SPARSE_MAX, Math.max(4, Math.ceil(this.n * 1.25)));
    const keys = new Uint16Array(cap);
    const shi = new Uint32Array(cap);
    const slo = new Uint32Array(cap);
    if (this.keys) {
      keys.set(this.keys.subarray(0, this.n));
      shi.set((this.shi as Uint32Array).subarray(0, this.n));
      slo.set((this.slo as Uint32Array).subarray(0, this.n));
    }
    this.keys = keys;
    this.shi = shi;
    this.slo = slo;
  }

  private densify(): void {
    const hi = new Uint32Array(CHUNK_BLOCKS).fill(this.fillHi);
    const lo = new Uint32Array(CHUNK_BLOCKS).fill(this.fillLo);
    for (let k = 0; k < this.n; k++) {
      const i = (this.keys as Uint16Array)[k];
      hi[i] = (this.shi as Uint32Array)[k];
      lo[i] = (this.slo as Uint32Array)[k];
    }
    this.hi = hi;
    this.lo = lo;
    this.keys = this.shi = this.slo = null;
    this.n = 0;
  }

  fill(hi: number, lo: number): void {
    this.hi = this.lo = this.keys = this.shi = this.slo = null;
    this.n = 0;
    this.fillHi = hi;
    this.fillLo = lo;
    this.persistedId = 0;
  }

  /**
   * Calls fn for every distinct stored entry: each explicit one with its index, then
   * the fill entry once with index -1 if some block uses it and it is not zero.
   */
  scan(fn: (i: number, hi: number, lo: number) => void): void {
    if (this.hi && this.lo) {
      for (let i = 0; i < CHUNK_BLOCKS; i++) fn(i, this.hi[i], this.lo[i]);
      return;
    }
    for (let k = 0; k < this.n; k++) fn((this.keys as Uint16Array)[k], (this.shi as Uint32Array)[k], (this.slo as Uint32Array)[k]);
    if (this.n < CHUNK_BLOCKS && this.fillHi !== 0) fn(-1, this.fillHi, this.fillLo);
  }

  /** Changes the entry found by scan (index -1: the fill entry). */
  update(i: number, hi: number, lo: number): void {
    if (i >= 0) {
      this.set(i, hi, lo);
      return;
    }
    this.fillHi = hi;
    this.fillLo = lo;
    this.persistedId = 0;
  }

  /** Blocks whose entry satisfies `pred`. */
  count(pred: (hi: number) => boolean): number {
    if (this.hi) {
      let c = 0;
      for (let i = 0; i < CHUNK_BLOCKS; i++) if (pred(this.hi[i])) c++;
      return c;
    }
    let c = pred(this.fillHi) ? CHUNK_BLOCKS - this.n : 0;
    for (let k = 0; k < this.n; k++) if (pred((this.shi as Uint32Array)[k])) c++;
    return c;
  }

  clone(owner: number): Chunk {
    const c = new Chunk(owner);
    c.fillHi = this.fillHi;
    c.fillLo = this.fillLo;
    if (this.hi && this.lo) {
      c.hi = this.hi.slice();
      c.lo = this.lo.slice();
    } else if (this.n > 0) {
      c.keys = (this.keys as Uint16Array).slice(0, this.n);
      c.shi = (this.shi as Uint32Array).slice(0, this.n);
      c.slo = (this.slo as Uint32Array).slice(0, this.n);
      c.n = this.n;
    }
    return c;
  }

  get bytes(): number {
    if (this.hi) return CHUNK_BLOCKS * 8;
    return this.keys ? this.keys.length * 10 : 0;
  }

  /** Serialization for checkpoints: 0 = fill only, 1 = dense, 2 = sparse. */
  encode(): Buffer {
    if (this.hi && this.lo) {
      const b = Buffer.alloc(1 + CHUNK_BLOCKS * 8);
      b[0] = 1;
      Buffer.from(this.hi.buffer, this.hi.byteOffset, this.hi.byteLength).copy(b, 1);
      Buffer.from(this.lo.buffer, this.lo.byteOffset, this.lo.byteLength).copy(b, 1 + CHUNK_BLOCKS * 4);
      return b;
    }
    const b = Buffer.alloc(11 + this.n * 10);
    b[0] = this.n > 0 ? 2 : 0;
    b.writeUInt32LE(this.fillHi, 1);
    b.writeUInt32LE(this.fillLo, 5);
    b.writeUInt16LE(this.n, 9);
    for (let k = 0; k < this.n; k++) {
      b.writeUInt16LE((this.keys as Uint16Array)[k], 11 + k * 2);
      b.writeUInt32LE((this.shi as Uint32Array)[k], 11 + this.n * 2 + k * 4);
      b.writeUInt32LE((this.slo as Uint32Array)[k], 11 + this.n * 6 + k * 4);
    }
    return b;
  }

  static decode(b: Uint8Array, owner: number): Chunk | null {
    const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const c = new Chunk(owner);
    if (buf[0] === 1 && buf.length === 1 + CHUNK_BLOCKS * 8) {
      c.hi = new Uint32Array(CHUNK_BLOCKS);
      c.lo = new Uint32Array(CHUNK_BLOCKS);
      for (let i = 0; i < CHUNK_BLOCKS; i++) {
        c.hi[i] = buf.readUInt32LE(1 + i * 4);
        c.lo[i] = buf.readUInt32LE(1 + CHUNK_BLOCKS * 4 + i * 4);
      }
      return c;
    }
    if ((buf[0] !== 0 && buf[0] !== 2) || buf.length < 11) return null;
    c.fillHi = buf.readUInt32LE(1);
    c.fillLo = buf.readUInt32LE(5);
    const n = buf.readUInt16LE(9);
    if (buf.length !== 11 + n * 10 || n > SPARSE_MAX) return null;
    for (let k = 0; k < n; k++) {
      const i = buf.readUInt16LE(11 + k * 2);
      if (i >= CHUNK_BLOCKS) return null;
      c.set(i, buf.readUInt32LE(11 + n * 2 + k * 4), buf.readUInt32LE(11 + n * 6 + k * 4));
    }
    return c;
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

export const encodeChunk = (c: Chunk): Buffer => c.encode();
export const decodeChunk = (b: Uint8Array, owner: number): Chunk | null => Chunk.decode(b, owner);
