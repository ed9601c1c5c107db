import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ImageExtent, LogRecord } from '../../../src/replica/store-types';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, collect, open, pattern, tempDirs } from './helpers';

const mk = tempDirs();

/** Applies extents to a plain buffer image. */
function paint(size: number, extents: ImageExtent[], base?: Buffer): Buffer {
  const img = base ? Buffer.from(base) : Buffer.alloc(size);
  for (const e of extents) {
    if (e.type === 'data') e.data.copy(img, e.offset);
    else img.fill(0, e.offset, e.offset + e.length);
  }
  return img;
}

test('snapshots: list with sizes, read, exclusive bytes, delete, revert, survive restart', async () => {
  const dir = mk();
  let s = await open(dir, { size: 8 * MiB });
  await s.write(0, 1, 0, pattern(1, 0, 64));
  const a = await s.createSnapshot('a', 0, 2);
  assert.equal(a.sizeBytes, 64 * BLOCK_SIZE);
  await s.write(0, 3, 0, pattern(3, 0, 16));
  await s.write(0, 4, 128 * BLOCK_SIZE, pattern(4, 128, 8));
  await s.createSnapshot('b', 0, 5);
  await assert.rejects(s.createSnapshot('b', 0, 6), { code: 'ERR_ALREADY_EXISTS' });
  await assert.rejects(s.createSnapshot('', 0, 6), { code: 'ERR_INVALID_ARGUMENT' });
  await s.write(0, 6, 0, pattern(6, 0, 4));
  const list = s.listSnapshots();
  assert.deepEqual(list.map((x) => [x.name, x.seq, x.sizeBytes]), [['a', 2, 64 * BLOCK_SIZE], ['b', 5, 72 * BLOCK_SIZE]]);
  // a alone holds blocks 0..15 of write 1; b alone holds blocks 4..15 of write 3 (head overwrote 0..3 with write 6).
  assert.equal(list[0].exclusiveBytes, 16 * BLOCK_SIZE);
  assert.equal(list[1].exclusiveBytes, 4 * BLOCK_SIZE);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE, 'a'), pattern(1, 0, 64));
  const bImage = Buffer.concat([pattern(3, 0, 16), pattern(1, 16, 48)]);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE, 'b'), bImage);
  await s.close();
  s = await open(dir);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE, 'a'), pattern(1, 0, 64));
  await s.revertToSnapshot('a', 0, 7);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE), pattern(1, 0, 64));
  assert.deepEqual(await s.read(128 * BLOCK_SIZE, 8 * BLOCK_SIZE), Buffer.alloc(8 * BLOCK_SIZE));
  await s.deleteSnapshot('a');
  await assert.rejects(s.read(0, BLOCK_SIZE, 'a'), { code: 'ERR_NOT_FOUND' });
  await assert.rejects(s.deleteSnapshot('a'), { code: 'ERR_NOT_FOUND' });
  await s.close();
  s = await open(dir);
  assert.deepEqual(s.listSnapshots().map((x) => x.name), ['b']);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE), pattern(1, 0, 64), 'revert survives restart after its snapshot is gone');
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE, 'b'), bImage);
  await s.close();
});

test('exportImage: a full image and the difference between two snapshots rebuild the same bytes', async () => {
  const size = 4 * MiB;
  const s = await open(mk(), { size });
  await s.write(0, 1, 0, pattern(1, 0, 300));
  await s.write(0, 2, 600 * BLOCK_SIZE, pattern(2, 600, 10));
  await s.createSnapshot('one', 0, 3);
  await s.write(0, 4, 50 * BLOCK_SIZE, pattern(4, 50, 20));
  await s.unmap(0, 5, 602 * BLOCK_SIZE, 4 * BLOCK_SIZE);
  await s.write(0, 6, 900 * BLOCK_SIZE, pattern(6, 900, 1));
  await s.createSnapshot('two', 0, 7);
  const full = await collect(s.exportImage({ snapshot: 'one' }));
  const oneImage = paint(size, full);
  assert.deepEqual(oneImage, await s.read(0, size, 'one'));
  assert.ok(full.every((e) => e.type === 'zero' || e.data.length <= 256 * BLOCK_SIZE));
  const diff = await collect(s.exportImage({ snapshot: 'two', base: 'one' }));
  assert.deepEqual(paint(size, diff, oneImage), await s.read(0, size, 'two'));
  const diffBytes = diff.reduce((n, e) => n + (e.type === 'data' ? e.data.length : e.length), 0);
  assert.equal(diffBytes, 25 * BLOCK_SIZE, 'the diff holds only what changed');
  assert.deepEqual(diff.map((e) => e.seq).sort((x, y) => x - y), [4, 5, 6]);
  // A fresh replica rebuilt from the extents reads the same.
  const t = await open(mk(), { size });
  for (const e of await collect(s.exportImage({}))) await t.applyExtent(e);
  assert.deepEqual(await t.read(0, size), await s.read(0, size));
  await t.close();
  await s.close();
});

test('exportRecords feeds a delta rebuild; higher seq wins against interleaved live writes', async () => {
  const size = 2 * MiB;
  const src = await open(mk(), { size });
  const dst = await open(mk(), { size });
  for (let seq = 1; seq <= 20; seq++) {
    const data = pattern(seq, seq * 3, 4);
    await src.write(0, seq, seq * 3 * BLOCK_SIZE, data);
    if (seq <= 8) await dst.write(0, seq, seq * 3 * BLOCK_SIZE, data);
  }
  await src.unmap(0, 21, 30 * BLOCK_SIZE, 2 * BLOCK_SIZE);
  await src.createSnapshot('snap', 0, 22);
  // A live write reaches the rebuilding replica before the stream does.
  await src.write(0, 23, 60 * BLOCK_SIZE, pattern(23, 60, 2));
  await dst.write(0, 23, 60 * BLOCK_SIZE, pattern(23, 60, 2));
  const recs: LogRecord[] = await collect(src.exportRecords(8));
  assert.deepEqual(recs.map((r) => r.seq), [9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23]);
  assert.deepEqual(recs.map((r) => r.type).slice(-3), ['unmap', 'snapshot', 'write']);
  for (const r of recs.reverse()) await dst.applyRecord(r);
  assert.deepEqual(await dst.read(0, size), await src.read(0, size));
  assert.deepEqual(dst.listSnapshots().map((x) => x.name), ['snap']);
  await src.close();
  await dst.close();
});

test('truncateAfter cuts a divergent tail and restores older data', async () => {
  const dir = mk();
  let s = await open(dir, { size: MiB });
  await s.setEpoch(1);
  await s.write(1, 1, 0, pattern(1, 0, 4));
  await s.write(1, 2, 4 * BLOCK_SIZE, pattern(2, 4, 4));
  await s.flush(1);
  await s.write(1, 3, 0, pattern(3, 0, 2));
  await s.createSnapshot('late', 1, 4);
  await s.write(1, 5, 8 * BLOCK_SIZE, pattern(5, 8, 1));
  await s.truncateAfter(2);
  assert.equal(s.info().lastSeq, 2);
  assert.deepEqual(s.listSnapshots(), []);
  const want = Buffer.concat([pattern(1, 0, 4), pattern(2, 4, 4), Buffer.alloc(BLOCK_SIZE)]);
  assert.deepEqual(await s.read(0, 9 * BLOCK_SIZE), want);
  await s.setEpoch(2);
  await s.write(2, 3, 8 * BLOCK_SIZE, pattern(33, 8, 1));
  await s.close();
  s = await open(dir);
  assert.equal(s.info().lastSeq, 3);
  assert.deepEqual(await s.read(0, 8 * BLOCK_SIZE), want.subarray(0, 8 * BLOCK_SIZE));
  assert.deepEqual(await s.read(8 * BLOCK_SIZE, BLOCK_SIZE), pattern(33, 8, 1));
  const recs = await collect(s.exportRecords(2));
  assert.deepEqual(recs.filter((r) => r.type === 'write').map((r) => r.seq), [3]);
  await s.close();
});

test('exportRecords is ERR_NOT_FOUND once compaction dropped records after the asked seq, or across a revert', async () => {
  const s = await open(mk(), { size: 4 * MiB, segmentSize: MiB });
  for (let round = 0; round < 3; round++) for (let i = 0; i < 8; i++) await s.write(0, round * 8 + i + 1, i * 64 * BLOCK_SIZE, pattern(round, i * 64, 64));
  await s.write(0, 25, 0, pattern(25, 0)); // seals the last full segment
  assert.equal((await collect(s.exportRecords(0))).length, 25);
  const r = await s.compact({ minDeadRatio: 0.1 });
  assert.ok(r.segmentsFreed > 0);
  await assert.rejects(collect(s.exportRecords(0)), { code: 'ERR_NOT_FOUND' });
  const tail = await collect(s.exportRecords(24));
  assert.deepEqual(tail.map((x) => x.seq), [25]);
  await s.createSnapshot('base', 0, 26);
  await s.write(0, 27, 0, pattern(27, 0));
  await s.revertToSnapshot('base', 0, 28);
  await assert.rejects(collect(s.exportRecords(25)), { code: 'ERR_NOT_FOUND' });
  await s.close();
});
