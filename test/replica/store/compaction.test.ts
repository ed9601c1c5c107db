import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { CHUNK_BLOCKS, IndexView, indexBytes, packHi } from '../../../src/replica/store/block-index';
import { TokenBucket } from '../../../src/replica/store/token-bucket';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, open, pattern, tempDirs } from './helpers';

const mk = tempDirs();

test('compaction reclaims overwritten, unmapped and snapshot-only space and keeps every view intact', async () => {
  const dir = mk();
  let s = await open(dir, { size: 16 * MiB, segmentSize: MiB });
  // 4 MiB written three times over: two thirds of the log is dead.
  for (let round = 1; round <= 3; round++) {
    for (let i = 0; i < 16; i++) await s.write(0, round * 100 + i, i * 64 * BLOCK_SIZE, pattern(round * 100 + i, i * 64, 64));
  }
  await s.createSnapshot('keep', 0, 400);
  for (let i = 0; i < 4; i++) await s.write(0, 500 + i, i * 64 * BLOCK_SIZE, pattern(500 + i, i * 64, 64));
  await s.unmap(0, 600, 512 * BLOCK_SIZE, 256 * BLOCK_SIZE);
  await s.flush(0);
  const headBefore = await s.read(0, 16 * MiB);
  const snapBefore = await s.read(0, 16 * MiB, 'keep');
  const before = s.space(true);
  assert.ok(before.reclaimableBytes > 8 * MiB, `reclaimable ${before.reclaimableBytes}`);
  const r = await s.compact({ minDeadRatio: 0.2 });
  assert.ok(r.segmentsFreed > 0 && r.bytesFreed > 6 * MiB, JSON.stringify(r));
  const after1 = s.space(true);
  assert.ok(after1.totalBytes < before.totalBytes - 6 * MiB, `${after1.totalBytes} vs ${before.totalBytes}`);
  assert.deepEqual(await s.read(0, 16 * MiB), headBefore);
  assert.deepEqual(await s.read(0, 16 * MiB, 'keep'), snapBefore);
  // Deleting the snapshot frees the 1 MiB only it kept alive.
  await s.deleteSnapshot('keep');
  const freedBySnap = s.space(true).reclaimableBytes;
  assert.ok(freedBySnap >= MiB - 64 * 1024, `reclaimable after delete ${freedBySnap}`);
  await s.compact({ minDeadRatio: 0.1 });
  assert.deepEqual(await s.read(0, 16 * MiB), headBefore);
  await s.close();
  s = await open(dir);
  assert.deepEqual(await s.read(0, 16 * MiB), headBefore);
  assert.ok(s.info().space.liveBytes <= s.info().space.totalBytes);
  await s.close();
});

test('background compaction runs by itself', async () => {
  const dir = mk();
  const rate = 8 * MiB;
  const s = await open(dir, { size: 8 * MiB, segmentSize: MiB, compaction: { enabled: true, intervalMs: 50, minDeadRatio: 0.5, bytesPerSecond: rate } });
  for (let round = 0; round < 4; round++) for (let i = 0; i < 8; i++) await s.write(0, round * 10 + i + 1, i * 64 * BLOCK_SIZE, pattern(round, i * 64, 64));
  await s.write(0, 100, 0, pattern(100, 0)); // roll so the last full segment is sealed
  const image = await s.read(0, 8 * MiB);
  // About 8.4 MB of log was appended for 2 MiB of live data (compaction may already be
  // running, which is the point): it must come down to a few MiB without being asked.
  const t0 = Date.now();
  while (s.space(true).totalBytes > 5 * MiB && Date.now() - t0 < 30_000) await sleep(50);
  const space = s.space(true);
  assert.ok(space.totalBytes <= 5 * MiB, `log still ${space.totalBytes} bytes (live ${space.liveBytes})`);
  assert.deepEqual(await s.read(0, 8 * MiB), image);
  await s.close();
});

test('index memory: at most 2 MiB per GiB written, scattered or dense, nothing for unwritten regions', () => {
  const GiB = 1 << 30;
  const blocks = (16 * GiB) / BLOCK_SIZE;
  const head = new IndexView(blocks);
  const empty = indexBytes([head]);
  assert.ok(empty < 16 * 1024, `empty 16 GiB volume costs ${empty} bytes`);
  // 1 GiB written in 4k random order, spread over the 16 GiB volume; records of
  // 4148 bytes fill 64 MiB segments one after another, as the appender does.
  const written = GiB / BLOCK_SIZE;
  const perSegment = Math.floor((64 * MiB) / (BLOCK_SIZE + 52));
  for (let i = 0; i < written; i++) {
    const lba = (i * 2654435761) % blocks;
    head.set(lba, packHi(1 + Math.floor(i / perSegment), 0, false), 64 + (i % perSegment) * (BLOCK_SIZE + 52));
  }
  const scatteredBytes = indexBytes([head]);
  assert.ok(scatteredBytes <= 2 * MiB, `1 GiB of scattered 4k writes costs ${scatteredBytes} bytes of index`);
  const scattered = new IndexView(blocks);
  for (let ci = 0; ci < blocks / CHUNK_BLOCKS; ci++) scattered.set(ci * CHUNK_BLOCKS + (ci % 7), packHi(1, 0, false), ci);
  const oneEach = indexBytes([scattered]) / (blocks / CHUNK_BLOCKS);
  assert.ok(oneEach < 400, `one 4k write per chunk costs ${oneEach} bytes, not a whole chunk`);
  // 1 GiB written sequentially in 1 MiB records.
  const dense = new IndexView(blocks);
  for (let lba = 0; lba < written; lba++) {
    const record = lba >>> 8;
    dense.set(lba, packHi(1 + (record >>> 6), lba & 255, false), 64 + (record & 63) * (256 * (BLOCK_SIZE + 4) + 48));
  }
  const denseBytes = indexBytes([dense]);
  assert.ok(denseBytes <= 2 * MiB, `1 GiB written costs ${denseBytes} bytes of index (goal 2 MiB)`);
  const snap = dense.freeze();
  assert.equal(indexBytes([dense, snap]) - denseBytes < 64 * 1024, true, 'a snapshot shares every chunk');
  dense.set(5, packHi(2, 0, false), 0);
  assert.ok(indexBytes([dense, snap]) - denseBytes <= 8 * CHUNK_BLOCKS + 64 * 1024, 'an overwrite after a snapshot copies one chunk');
});

test('the compaction token bucket holds I/O to its rate after a one-second burst', async () => {
  const rate = 200_000;
  const bucket = new TokenBucket(rate);
  const t0 = performance.now();
  for (let i = 0; i < 6; i++) await bucket.take(100_000);
  const secs = (performance.now() - t0) / 1000;
  // 600 kB at 200 kB/s with 200 kB of burst: at least 2 s.
  assert.ok(secs >= 1.9 && secs < 4, `${secs} s`);
});
