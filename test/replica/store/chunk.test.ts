import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CHUNK_BLOCKS, Chunk } from '../../../src/replica/store/chunk';
import { IndexView, decodeChunk, encodeChunk, packHi } from '../../../src/replica/store/block-index';

/** xorshift32: deterministic, so a failure reruns the same way. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
}

type Ref = Map<number, [number, number]>;

function checkAll(c: Chunk, ref: Ref, fill: [number, number], label: string): void {
  for (let i = 0; i < CHUNK_BLOCKS; i++) {
    const want = ref.get(i) ?? fill;
    assert.equal(c.entryHi(i), want[0], `${label}: hi of block ${i}`);
    assert.equal(c.entryLo(i), want[1], `${label}: lo of block ${i}`);
  }
}

/** Writes `n` random entries drawn by `entry`, checking against a map every so often and at the end. */
function exercise(seed: number, n: number, entry: (r: () => number) => [number, number], keys = CHUNK_BLOCKS): { c: Chunk; ref: Ref } {
  const r = rng(seed);
  const c = new Chunk(1);
  const ref: Ref = new Map();
  for (let k = 0; k < n; k++) {
    const i = r() % keys;
    const [hi, lo] = entry(r);
    c.set(i, hi, lo);
    ref.set(i, [hi, lo]);
    if (k % 997 === 0) checkAll(c, ref, [0, 0], `seed ${seed} step ${k}`);
  }
  checkAll(c, ref, [0, 0], `seed ${seed} end`);
  return { c, ref };
}

test('scattered 4k entries (one hi per segment) stay narrow: about 6 bytes each', () => {
  const { c, ref } = exercise(1, 600, (r) => [packHi(1 + (r() % 20), 0, false), 64 + (r() % 16000) * 4148]);
  // 6 bytes an entry plus growth slack (at most 1/8), a small palette and one chunk's engine overhead.
  assert.ok(c.bytes < ref.size * 7 + 500, `${ref.size} entries cost ${c.bytes} bytes`);
});

test('many distinct hi values overflow the palette and the chunk goes wide, then dense; every entry survives', () => {
  // Blocks inside long records: hi differs per block, so the palette fills.
  const { c, ref } = exercise(2, 30000, (r) => [packHi(1 + (r() % 3), r() % 4000, false), 64 + (r() % 10000) * 4148]);
  assert.ok(ref.size > CHUNK_BLOCKS * 0.9);
  assert.ok(c.bytes <= CHUNK_BLOCKS * 8 + 400, `full chunk costs ${c.bytes} bytes`);
});

test('record offsets past 2^26 (segments over 64 MiB) go wide', () => {
  const { c, ref } = exercise(3, 500, (r) => [packHi(1, 0, r() % 5 === 0), (r() % 0x40000000) >>> 0]);
  assert.ok(c.bytes < ref.size * 10 + 1000, `${ref.size} entries cost ${c.bytes} bytes`);
});

test('a palette full of overwritten values is pruned before the chunk widens', () => {
  // 40 blocks rewritten from 2,000 successive segments: only the latest values are in use.
  const c = new Chunk(1);
  const ref: Ref = new Map();
  for (let seg = 1; seg <= 2000; seg++) {
    for (let i = 0; i < 40; i++) {
      c.set(i * 7, packHi(seg, 0, false), 64 + i * 4148);
      ref.set(i * 7, [packHi(seg, 0, false), 64 + i * 4148]);
    }
  }
  checkAll(c, ref, [0, 0], 'after rewrites');
  assert.ok(c.bytes < 40 * 6 + 2 * 1024 + 400, `40 entries cost ${c.bytes} bytes`);
});

test('clone is independent; encode/decode round-trips every form; fill, scan, update and count agree', () => {
  const forms = [
    exercise(4, 300, (r) => [packHi(1 + (r() % 4), 0, false), 64 + (r() % 1000) * 4148]),
    exercise(5, 3000, (r) => [packHi(1, r() % 4000, false), 64 + (r() % 1000) * 4148]),
    exercise(6, 40000, (r) => [packHi(1 + (r() % 9), r() % 4000, false), (r() % 0x40000000) >>> 0]),
  ];
  for (const [k, { c, ref }] of forms.entries()) {
    const copy = c.clone(2);
    copy.set(5, packHi(77, 0, false), 123);
    checkAll(c, ref, [0, 0], `form ${k}: original after the clone changed`);
    const decoded = decodeChunk(encodeChunk(c), 3);
    assert.ok(decoded, `form ${k} decodes`);
    checkAll(decoded, ref, [0, 0], `form ${k}: decoded`);
    let seen = 0;
    c.scan((i, hi, lo) => {
      // A dense chunk also shows its never-written blocks (zero entries).
      if (i < 0 || hi === 0) return;
      seen++;
      assert.deepEqual([hi, lo], ref.get(i));
    });
    assert.equal(seen, ref.size);
    assert.equal(c.count((hi) => hi !== 0), ref.size);
  }
  const f = new Chunk(1);
  const unmapHi = packHi(3, 0, true);
  f.fill(unmapHi, 4096);
  f.set(10, packHi(4, 0, false), 64);
  assert.equal(f.entryHi(9), unmapHi);
  assert.equal(f.entryHi(10), packHi(4, 0, false));
  assert.equal(f.count((hi) => hi === unmapHi), CHUNK_BLOCKS - 1);
  const fills: number[] = [];
  f.scan((i) => fills.push(i));
  assert.deepEqual(fills, [10, -1]);
  f.update(-1, packHi(5, 0, true), 8192);
  assert.equal(f.entryHi(9), packHi(5, 0, true));
  assert.equal(f.entryLo(9), 8192);
  const again = decodeChunk(encodeChunk(f), 1);
  assert.equal(again?.entryHi(9), packHi(5, 0, true));
  assert.equal(again?.entryLo(10), 64);
});

test('checkpoint chunks from another chunk size or malformed bytes are refused', () => {
  assert.equal(decodeChunk(Buffer.from([1, 0, 0]), 1), null);
  assert.equal(decodeChunk(Buffer.from([2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 1), null);
  const c = new Chunk(1);
  c.set(1, packHi(1, 0, false), 64);
  c.set(2, packHi(1, 0, false), 4212);
  const b = encodeChunk(c);
  b.writeUInt16LE(1, 21); // second key equal to the first: out of order
  assert.equal(decodeChunk(b, 1), null);
  assert.equal(decodeChunk(encodeChunk(c).subarray(0, 15), 1), null);
});

test('setRun gives the same entries as one set() per block, in every form', () => {
  for (const seed of [11, 12, 13, 14]) {
    const r = rng(seed);
    const c = new Chunk(1);
    const ref: Ref = new Map();
    // Seed 14 mixes in offsets past 2^26 (wide); the long runs of 13 overflow the palette.
    for (let k = 0; k < 400; k++) {
      const count = seed === 13 ? 1 + (r() % 1500) : 1 + (r() % 300);
      const i0 = r() % (CHUNK_BLOCKS - count);
      const seg = 1 + (r() % 6);
      const b0 = r() % 100;
      const lo = seed === 14 && k % 3 === 0 ? 0x5000000 + (r() % 0x1000000) : 64 + (r() % 10000) * 4148;
      if (k % 4 === 0) {
        // Scattered singles in between, so runs land on and around existing entries.
        c.set(i0, packHi(seg, 0, false), lo);
        ref.set(i0, [packHi(seg, 0, false), lo]);
        continue;
      }
      if (k % 5 === 1) {
        // An unmap: every block of the run gets the same entry.
        c.setRun(i0, count, packHi(seg, 0, true), lo, 0);
        for (let j = 0; j < count; j++) ref.set(i0 + j, [packHi(seg, 0, true), lo]);
        continue;
      }
      c.setRun(i0, count, packHi(seg, b0, false), lo);
      for (let j = 0; j < count; j++) ref.set(i0 + j, [packHi(seg, b0 + j, false), lo]);
      if (k % 50 === 0) checkAll(c, ref, [0, 0], `seed ${seed} run ${k}`);
    }
    checkAll(c, ref, [0, 0], `seed ${seed} end`);
    const copy = decodeChunk(encodeChunk(c), 2);
    assert.ok(copy);
    checkAll(copy, ref, [0, 0], `seed ${seed} decoded`);
  }
});

test('IndexView.setRun splits a record across chunks with the block index carried on', () => {
  const view = new IndexView(3 * CHUNK_BLOCKS);
  const start = CHUNK_BLOCKS - 100;
  view.setRun(start, CHUNK_BLOCKS + 300, packHi(2, 7, false), 4148);
  for (const j of [0, 99, 100, 101, CHUNK_BLOCKS + 99, CHUNK_BLOCKS + 299]) {
    assert.equal(view.hi(start + j), packHi(2, 7 + j, false), `block ${j} of the run`);
    assert.equal(view.lo(start + j), 4148);
  }
  assert.equal(view.hi(start - 1), 0);
  assert.equal(view.hi(start + CHUNK_BLOCKS + 300), 0);
});
