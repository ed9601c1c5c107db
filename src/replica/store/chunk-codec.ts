import { CHUNK_BLOCKS, Chunk, DENSE_WORDS } from './chunk';

/**
 * Index chunks in checkpoints, independent of their form in memory. Codecs do
 * no I/O (STYLE.md rule 3). Tags 0-2 were the 1024-block chunks of earlier
 * versions; checkpoints also carry the chunk size (checkpoint.ts).
 *   fill    tag, fillHi u32, fillLo u32, n u16 = 0
 *   sparse  the same with n > 0, then n x (key u16, hi u32, lo u32), keys ascending
 *   dense   tag, then hi u32, lo u32 for every block
 */
const TAG_FILL = 3;
const TAG_DENSE = 4;
const TAG_SPARSE = 5;
const SPARSE_HEAD = 11;
const SPARSE_ENTRY = 10;

export function encodeChunk(c: Chunk): Buffer {
  const d = c.denseWords;
  if (d) {
    const b = Buffer.alloc(1 + DENSE_WORDS * 4);
    b[0] = TAG_DENSE;
    Buffer.from(d.buffer, d.byteOffset, d.byteLength).copy(b, 1);
    return b;
  }
  const entries: number[] = [];
  c.scan((i, hi, lo) => {
    if (i >= 0) entries.push(i, hi, lo);
  });
  const n = entries.length / 3;
  const b = Buffer.alloc(SPARSE_HEAD + n * SPARSE_ENTRY);
  b[0] = n > 0 ? TAG_SPARSE : TAG_FILL;
  b.writeUInt32LE(c.fillHi, 1);
  b.writeUInt32LE(c.fillLo, 5);
  b.writeUInt16LE(n, 9);
  for (let m = 0; m < n; m++) {
    const at = SPARSE_HEAD + m * SPARSE_ENTRY;
    b.writeUInt16LE(entries[m * 3], at);
    b.writeUInt32LE(entries[m * 3 + 1], at + 2);
    b.writeUInt32LE(entries[m * 3 + 2], at + 6);
  }
  return b;
}

/** The chunk `b` encodes, or null when it is malformed (or from another chunk size). */
export function decodeChunk(b: Uint8Array, owner: number): Chunk | null {
  const buf = Buffer.from(b.buffer, b.byteOffset, b.byteLength);
  if (buf[0] === TAG_DENSE && buf.length === 1 + DENSE_WORDS * 4) {
    const d = new Uint32Array(DENSE_WORDS);
    for (let w = 0; w < DENSE_WORDS; w++) d[w] = buf.readUInt32LE(1 + w * 4);
    return Chunk.fromDense(owner, d);
  }
  if ((buf[0] !== TAG_FILL && buf[0] !== TAG_SPARSE) || buf.length < SPARSE_HEAD) return null;
  const c = new Chunk(owner);
  c.fillHi = buf.readUInt32LE(1);
  c.fillLo = buf.readUInt32LE(5);
  const n = buf.readUInt16LE(9);
  if (buf.length !== SPARSE_HEAD + n * SPARSE_ENTRY || n > CHUNK_BLOCKS) return null;
  let prev = -1;
  for (let m = 0; m < n; m++) {
    const at = SPARSE_HEAD + m * SPARSE_ENTRY;
    const i = buf.readUInt16LE(at);
    if (i >= CHUNK_BLOCKS || i <= prev) return null;
    prev = i;
    c.set(i, buf.readUInt32LE(at + 2), buf.readUInt32LE(at + 6));
  }
  return c;
}
