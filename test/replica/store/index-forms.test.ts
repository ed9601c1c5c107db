import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { LogStore } from '../../../src/replica/store';
import { CHUNK_BLOCKS } from '../../../src/replica/store/block-index';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, open, pattern, tempDirs } from './helpers';

const mk = tempDirs();
const CHUNK_BYTES = CHUNK_BLOCKS * BLOCK_SIZE;

/** Tag of each block's content (0: zeros), to compare every block a view holds. */
type Image = Int32Array;

async function checkView(s: LogStore, img: Image, label: string, snapshot?: string): Promise<void> {
  const step = 64;
  for (let lba = 0; lba < img.length; lba += step) {
    const got = await s.read(lba * BLOCK_SIZE, step * BLOCK_SIZE, snapshot);
    for (let i = 0; i < step; i++) {
      const tag = img[lba + i];
      const want = tag === 0 ? Buffer.alloc(BLOCK_SIZE) : pattern(tag, lba + i);
      if (!got.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE).equals(want)) assert.fail(`${label}: block ${lba + i} differs (want tag ${tag})`);
    }
    // The 4k path too, on a sample of blocks.
    const one = lba + ((lba * 7) % step);
    const tag = img[one];
    assert.ok((await s.read(one * BLOCK_SIZE, BLOCK_SIZE, snapshot)).equals(tag === 0 ? Buffer.alloc(BLOCK_SIZE) : pattern(tag, one)), `${label}: 4k read of ${one}`);
  }
}

test('every index chunk form (narrow, wide, dense, fill) keeps data through snapshots, compaction and restart', async () => {
  const dir = mk();
  // Three chunks: one written whole in 1 MiB records (distinct hi per block: wide, then dense),
  // one with scattered 4k writes (narrow), one unmapped whole (a fill entry).
  const size = 3 * CHUNK_BYTES;
  let s = await open(dir, { size, segmentSize: 8 * MiB });
  const img: Image = new Int32Array(size / BLOCK_SIZE);
  let seq = 0;
  const write = async (lba: number, blocks: number): Promise<void> => {
    seq++;
    await s.write(0, seq, lba * BLOCK_SIZE, pattern(seq, lba, blocks));
    for (let i = 0; i < blocks; i++) img[lba + i] = seq;
  };
  for (let lba = 0; lba < CHUNK_BLOCKS; lba += 256) await write(lba, 256);
  for (let i = 0; i < 700; i++) await write(CHUNK_BLOCKS + ((i * 2654435761) >>> 0) % CHUNK_BLOCKS, 1);
  for (let lba = 2 * CHUNK_BLOCKS; lba < 3 * CHUNK_BLOCKS; lba += 512) await write(lba, 512);
  await s.unmap(0, ++seq, 2 * CHUNK_BYTES, CHUNK_BYTES);
  img.fill(0, 2 * CHUNK_BLOCKS);
  const [dense, narrow, fill] = s.head.table.map((c) => c?.bytes ?? 0);
  assert.ok(dense >= CHUNK_BLOCKS * 8, `whole chunk of 1 MiB records is dense (${dense} bytes)`);
  assert.ok(narrow < 700 * 7 + 1024, `700 scattered entries stay narrow (${narrow} bytes)`);
  assert.ok(fill < 1024, `an unmapped chunk is one fill entry (${fill} bytes)`);
  await checkView(s, img, 'head before the snapshot');

  await s.createSnapshot('before', 0, ++seq);
  const snapImg = img.slice();
  // Overwrites after the snapshot copy each chunk (copy-on-write) and leave dead records for compaction.
  for (let i = 0; i < 300; i++) await write(((i * 40503) >>> 0) % (2 * CHUNK_BLOCKS), 1 + (i % 3));
  await write(2 * CHUNK_BLOCKS + 100, 16);
  await s.unmap(0, ++seq, 64 * BLOCK_SIZE, 64 * BLOCK_SIZE);
  img.fill(0, 64, 128);
  await s.flush(0);
  await checkView(s, img, 'head after overwrites');
  await checkView(s, snapImg, 'snapshot after overwrites', 'before');

  const r = await s.compact({ minDeadRatio: 0.01 });
  assert.ok(r.segmentsFreed > 0, 'compaction moved records, so every form was relocated');
  await checkView(s, img, 'head after compaction');
  await checkView(s, snapImg, 'snapshot after compaction', 'before');

  await s.close();
  s = await open(dir);
  assert.equal(s.info().state, 'ok');
  await checkView(s, img, 'head after restart');
  await checkView(s, snapImg, 'snapshot after restart', 'before');
  await s.close();
});
