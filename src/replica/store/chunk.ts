/**
 * One chunk of the block index: the entries (hi, lo) of CHUNK_BLOCKS consecutive
 * blocks (block-index.ts says what hi and lo hold). Three forms, chosen by what
 * keeps memory lowest (DESIGN.md "Replica storage": at most ~2 MiB per GiB written,
 * i.e. 8 bytes per 4 KiB block, overheads included):
 *
 *   narrow  sorted entries of 6 bytes: key (13 bits) + palette index (9 bits) +
 *           lo (26 bits), with the distinct hi values in a palette. 4k writes
 *           scattered over a volume fit here: their hi is one value per segment.
 *   wide    sorted entries of 10 bytes: key, hi, lo; when a lo is past 2^26
 *           (segments over 64 MiB) or the palette is full.
 *   dense   8 bytes per block; a wide chunk becomes dense once that is smaller.
 *
 * A chunk costs one object and one typed array whatever its form: a typed array
 * is ~200 bytes of engine overhead on its own, more than 30 narrow entries, so the
 * palette lives in front of the entries in the same Uint16Array, and chunks span
 * 32 MiB of volume so that 4k writes scattered at 1 in 16 blocks still put ~500
 * entries behind each chunk's ~300 bytes of overhead.
 * Blocks without an entry read as the fill entry (zero, or a large unmap's).
 */
export const CHUNK_SHIFT = 13;
export const CHUNK_BLOCKS = 1 << CHUNK_SHIFT;
const KEY_MASK = CHUNK_BLOCKS - 1;
const NARROW = 3;
const WIDE = 5;
const NARROW_LO_LIMIT = 1 << 26;
const PALETTE_MAX = 1 << 9;
export const DENSE_WORDS = CHUNK_BLOCKS * 2;
/** Shorter runs are set block by block. */
const RUN_MIN = 8;
const Form = { Narrow: 0, Wide: 1, Dense: 2 } as const;
type FormValue = (typeof Form)[keyof typeof Form];
/** Engine bytes of a Chunk object and of one typed array besides its data (measured with node 20, x64). */
export const CHUNK_OBJECT_BYTES = 120;
export const TYPED_ARRAY_BYTES = 200;

export class Chunk {
  private form: FormValue = Form.Narrow;
  /** Narrow: palette (2 words each, `pc` of them) then entries (3 words each); wide: entries (5 words each). */
  private s: Uint16Array | null = null;
  /** Dense: hi, lo of every block. */
  private d: Uint32Array | null = null;
  private n = 0;
  private pc = 0;
  private np = 0;
  private lastP = -1;
  fillHi = 0;
  fillLo = 0;
  /** Key of this chunk's content in the last checkpoint; 0 once changed since (checkpoint.ts). */
  persistedId = 0;
  constructor(public owner: number) {}

  private get base(): number {
    return this.form === Form.Narrow ? this.pc * 2 : 0;
  }
  private get stride(): number {
    return this.form === Form.Narrow ? NARROW : WIDE;
  }
  private keyAt(m: number): number {
    const s = this.s as Uint16Array;
    return this.form === Form.Narrow ? s[this.pc * 2 + m * NARROW] & KEY_MASK : s[m * WIDE];
  }

  /** Index of the entry of block i, or -(insertion point) - 1. */
  private find(i: number): number {
    if (this.n === 0) return -1;
    const s = this.s as Uint16Array;
    const stride = this.stride;
    const base = this.base;
    let a = 0;
    let b = this.n - 1;
    while (a <= b) {
      const m = (a + b) >>> 1;
      const k = s[base + m * stride] & KEY_MASK;
      if (k === i) return m;
      if (k < i) a = m + 1;
      else b = m - 1;
    }
    return -a - 1;
  }

  private hiAt(m: number): number {
    const s = this.s as Uint16Array;
    if (this.form === Form.Wide) return (s[m * WIDE + 1] | (s[m * WIDE + 2] << 16)) >>> 0;
    const at = this.pc * 2 + m * NARROW;
    const p = (s[at] >>> 13) | ((s[at + 2] >>> 10) << 3);
    return (s[p * 2] | (s[p * 2 + 1] << 16)) >>> 0;
  }
  private loAt(m: number): number {
    const s = this.s as Uint16Array;
    if (this.form === Form.Wide) return (s[m * WIDE + 3] | (s[m * WIDE + 4] << 16)) >>> 0;
    const at = this.pc * 2 + m * NARROW;
    return s[at + 1] | ((s[at + 2] & 0x3ff) << 16);
  }

  /** Where the entry of block i is: pass to hiAt/loAt (-1: the fill entry). One search serves both. */
  locate(i: number): number {
    return this.d ? i : this.find(i);
  }
  /** The hi of a located entry. */
  hiOf(at: number): number {
    if (this.d) return this.d[at * 2];
    return at >= 0 ? this.hiAt(at) : this.fillHi;
  }
  /** The lo of a located entry. */
  loOf(at: number): number {
    if (this.d) return this.d[at * 2 + 1];
    return at >= 0 ? this.loAt(at) : this.fillLo;
  }

  entryHi(i: number): number {
    if (this.d) return this.d[i * 2];
    const m = this.find(i);
    return m >= 0 ? this.hiAt(m) : this.fillHi;
  }
  entryLo(i: number): number {
    if (this.d) return this.d[i * 2 + 1];
    const m = this.find(i);
    return m >= 0 ? this.loAt(m) : this.fillLo;
  }

  set(i: number, hi: number, lo: number): void {
    this.persistedId = 0;
    if (this.d) {
      this.d[i * 2] = hi;
      this.d[i * 2 + 1] = lo;
      return;
    }
    if (this.form === Form.Narrow) {
      const p = lo < NARROW_LO_LIMIT ? this.paletteIndex(hi) : -1;
      if (p >= 0) {
        this.putNarrow(this.slotFor(i), i, p, lo);
        return;
      }
      this.widen();
    }
    let m = this.find(i);
    if (m < 0 && (this.n + 1) * WIDE * 2 > DENSE_WORDS * 4) {
      this.densify();
      this.set(i, hi, lo);
      return;
    }
    if (m < 0) m = this.insertAt(-m - 1);
    this.putWide(m, i, hi, lo);
  }

  /**
   * Blocks i0 .. i0+count-1 get (hi0 + j * step, lo): the blocks of one write record
   * in order (step 1) or of one unmap (step 0). The same result as count set() calls, but the entries after the run
   * move once, not once per block (a 1 MiB write into a well-filled chunk would
   * otherwise shift tens of KiB 256 times).
   */
  setRun(i0: number, count: number, hi0: number, lo: number, step = 1): void {
    if (this.d || count < RUN_MIN) {
      for (let j = 0; j < count; j++) this.set(i0 + j, hi0 + j * step, lo);
      return;
    }
    if (this.form === Form.Narrow && !this.reservePalette(hi0, step === 0 ? 1 : count, lo)) this.widen();
    let k0 = this.find(i0);
    if (k0 < 0) k0 = -k0 - 1;
    let k1 = this.find(i0 + count - 1);
    k1 = k1 < 0 ? -k1 - 1 : k1 + 1;
    // Entries k0..k1-1 lie inside the run and are replaced; the rest of the run is new.
    const added = count - (k1 - k0);
    if (this.form === Form.Wide && (this.n + added) * WIDE * 2 > DENSE_WORDS * 4) {
      this.densify();
      for (let j = 0; j < count; j++) this.set(i0 + j, hi0 + j * step, lo);
      return;
    }
    this.persistedId = 0;
    if (added > 0) this.insertAt(k1, added);
    for (let j = 0; j < count; j++) {
      if (this.form === Form.Narrow) this.putNarrow(k0 + j, i0 + j, this.paletteFind(hi0 + j * step), lo);
      else this.putWide(k0 + j, i0 + j, hi0 + j * step, lo);
    }
  }

  /**
   * Puts hi0 .. hi0+count-1 in the palette, pruning or growing it first so that no
   * value is pruned while the run is half written; false when they cannot all fit
   * (or lo needs more than 26 bits): the chunk must go wide.
   */
  private reservePalette(hi0: number, count: number, lo: number): boolean {
    if (lo >= NARROW_LO_LIMIT) return false;
    let missing = 0;
    for (let j = 0; j < count; j++) if (this.paletteFind(hi0 + j) < 0) missing++;
    if (missing === 0) return true;
    if (this.np + missing > this.pc && this.np > 0) {
      this.prunePalette();
      missing = 0;
      for (let j = 0; j < count; j++) if (this.paletteFind(hi0 + j) < 0) missing++;
    }
    if (this.np + missing > PALETTE_MAX) return false;
    if (this.np + missing > this.pc) {
      let pc = Math.max(2, this.pc);
      while (pc < this.np + missing) pc *= 2;
      const cap = this.s ? (this.s.length - this.base) / NARROW : 0;
      this.realloc(Math.min(PALETTE_MAX, pc), Math.max(cap, 4));
    }
    for (let j = 0; j < count; j++) if (this.paletteFind(hi0 + j) < 0) this.paletteIndex(hi0 + j);
    return true;
  }

  /** The entry index for block i, inserting an empty entry if it has none. */
  private slotFor(i: number): number {
    const m = this.find(i);
    return m >= 0 ? m : this.insertAt(-m - 1);
  }

  private putNarrow(m: number, i: number, p: number, lo: number): void {
    const s = this.s as Uint16Array;
    const at = this.pc * 2 + m * NARROW;
    s[at] = i | ((p & 0x7) << 13);
    s[at + 1] = lo & 0xffff;
    s[at + 2] = (lo >>> 16) | ((p >>> 3) << 10);
  }

  private putWide(m: number, i: number, hi: number, lo: number): void {
    const s = this.s as Uint16Array;
    const at = m * WIDE;
    s[at] = i;
    s[at + 1] = hi & 0xffff;
    s[at + 2] = hi >>> 16;
    s[at + 3] = lo & 0xffff;
    s[at + 4] = lo >>> 16;
  }

  /** Opens a gap for g entries at position k (growing the array by at least 1/8 when full). */
  private insertAt(k: number, g = 1): number {
    const stride = this.stride;
    const base = this.base;
    const cap = this.s ? (this.s.length - base) / stride : 0;
    if (this.n + g > cap) this.realloc(this.pc, Math.min(CHUNK_BLOCKS, Math.max(this.n + g, cap + Math.max(4, cap >>> 3))));
    const s = this.s as Uint16Array;
    s.copyWithin(base + (k + g) * stride, base + k * stride, base + this.n * stride);
    this.n += g;
    return k;
  }

  /** Moves palette and entries into a new array with room for `pc` palette values and `cap` entries. */
  private realloc(pc: number, cap: number): void {
    const stride = this.stride;
    const next = new Uint16Array(pc * 2 + cap * stride);
    if (this.s) {
      const base = this.base;
      next.set(this.s.subarray(0, this.np * 2));
      next.set(this.s.subarray(base, base + this.n * stride), pc * 2);
    }
    this.s = next;
    this.pc = pc;
  }

  /** Where hi is in the palette, or -1. Looks next to the last hit first: a record's blocks come in order. */
  private paletteFind(hi: number): number {
    const s = this.s;
    if (!s) return -1;
    const lo16 = hi & 0xffff;
    const hi16 = hi >>> 16;
    const guess = this.lastP + 1;
    if (guess < this.np && s[guess * 2] === lo16 && s[guess * 2 + 1] === hi16) return (this.lastP = guess);
    for (let p = 0; p < this.np; p++) if (s[p * 2] === lo16 && s[p * 2 + 1] === hi16) return (this.lastP = p);
    return -1;
  }

  /** The palette index of hi, added if new; -1 when the palette is full. */
  private paletteIndex(hi: number): number {
    const found = this.paletteFind(hi);
    if (found >= 0) return found;
    if (this.np === this.pc) {
      if (this.np > 0) this.prunePalette();
      if (this.np === this.pc) {
        if (this.pc === PALETTE_MAX) return -1;
        const cap = this.s ? (this.s.length - this.base) / NARROW : 0;
        this.realloc(Math.min(PALETTE_MAX, Math.max(2, this.pc * 2)), Math.max(cap, 4));
      }
    }
    const t = this.s as Uint16Array;
    t[this.np * 2] = hi & 0xffff;
    t[this.np * 2 + 1] = hi >>> 16;
    return (this.lastP = this.np++);
  }

  /** Drops palette values no entry uses any more (overwritten blocks leave them behind). */
  private prunePalette(): void {
    const s = this.s as Uint16Array;
    const base = this.pc * 2;
    const remap = new Int16Array(this.np).fill(-1);
    for (let m = 0; m < this.n; m++) {
      const at = base + m * NARROW;
      remap[(s[at] >>> 13) | ((s[at + 2] >>> 10) << 3)] = 0;
    }
    let np = 0;
    for (let p = 0; p < this.np; p++) {
      if (remap[p] < 0) continue;
      s[np * 2] = s[p * 2];
      s[np * 2 + 1] = s[p * 2 + 1];
      remap[p] = np++;
    }
    for (let m = 0; m < this.n; m++) {
      const at = base + m * NARROW;
      const p = remap[(s[at] >>> 13) | ((s[at + 2] >>> 10) << 3)];
      s[at] = (s[at] & KEY_MASK) | ((p & 0x7) << 13);
      s[at + 2] = (s[at + 2] & 0x3ff) | ((p >>> 3) << 10);
    }
    this.np = np;
    this.lastP = -1;
  }

  private widen(): void {
    const narrow = this.clone(this.owner);
    this.s = new Uint16Array(Math.max(4, this.n + (this.n >>> 3)) * WIDE);
    this.form = Form.Wide;
    this.pc = this.np = 0;
    for (let m = 0; m < this.n; m++) this.putWide(m, narrow.keyAt(m), narrow.hiAt(m), narrow.loAt(m));
  }

  private densify(): void {
    const d = new Uint32Array(DENSE_WORDS);
    for (let i = 0; i < CHUNK_BLOCKS; i++) {
      d[i * 2] = this.fillHi;
      d[i * 2 + 1] = this.fillLo;
    }
    for (let m = 0; m < this.n; m++) {
      const i = this.keyAt(m);
      d[i * 2] = this.hiAt(m);
      d[i * 2 + 1] = this.loAt(m);
    }
    this.d = d;
    this.s = null;
    this.form = Form.Dense;
    this.n = this.pc = this.np = 0;
  }

  /** Every block becomes (hi, lo), as one fill entry. */
  fill(hi: number, lo: number): void {
    this.s = this.d = null;
    this.form = Form.Narrow;
    this.n = this.pc = this.np = 0;
    this.fillHi = hi;
    this.fillLo = lo;
    this.persistedId = 0;
  }

  /**
   * Calls fn for every distinct stored entry: each explicit one with its index, then
   * the fill entry once with index -1 if some block uses it and it is not zero.
   */
  scan(fn: (i: number, hi: number, lo: number) => void): void {
    if (this.d) {
      for (let i = 0; i < CHUNK_BLOCKS; i++) fn(i, this.d[i * 2], this.d[i * 2 + 1]);
      return;
    }
    for (let m = 0; m < this.n; m++) fn(this.keyAt(m), this.hiAt(m), this.loAt(m));
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
    let c = 0;
    if (this.d) {
      for (let i = 0; i < CHUNK_BLOCKS; i++) if (pred(this.d[i * 2])) c++;
      return c;
    }
    if (pred(this.fillHi)) c = CHUNK_BLOCKS - this.n;
    for (let m = 0; m < this.n; m++) if (pred(this.hiAt(m))) c++;
    return c;
  }

  clone(owner: number): Chunk {
    const c = new Chunk(owner);
    c.fillHi = this.fillHi;
    c.fillLo = this.fillLo;
    c.form = this.form;
    c.n = this.n;
    c.pc = this.pc;
    c.np = this.np;
    if (this.d) c.d = this.d.slice();
    else if (this.s) c.s = this.s.slice(0, this.base + this.n * this.stride);
    return c;
  }

  /** Memory the chunk holds, engine overheads included. */
  get bytes(): number {
    if (this.d) return CHUNK_OBJECT_BYTES + TYPED_ARRAY_BYTES + this.d.byteLength;
    return CHUNK_OBJECT_BYTES + (this.s ? TYPED_ARRAY_BYTES + this.s.byteLength : 0);
  }

  /** The dense entries (hi, lo per block), or null for a sparse chunk. */
  get denseWords(): Uint32Array | null {
    return this.d;
  }

  /** A dense chunk over `words` (hi, lo per block; taken, not copied). */
  static fromDense(owner: number, words: Uint32Array): Chunk {
    const c = new Chunk(owner);
    c.d = words;
    c.form = Form.Dense;
    return c;
  }
}
