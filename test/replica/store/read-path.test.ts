import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { MetaDb } from '../../../src/replica/store/meta-db';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, open, pattern, tempDirs } from './helpers';

const mk = tempDirs();

test('4k reads held together keep their own bytes: pooled read memory is never handed out twice', async () => {
  const s = await open(mk(), { size: 64 * MiB });
  const blocks = 600; // more than a few read slabs' worth
  for (let i = 0; i < blocks; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => s.write(0, i + k + 1, (i + k) * 3 * BLOCK_SIZE, pattern(i + k + 1, (i + k) * 3))));
  }
  const held: Buffer[] = [];
  for (let i = 0; i < blocks; i += 32) held.push(...(await Promise.all(Array.from({ length: Math.min(32, blocks - i) }, (_, k) => s.read((i + k) * 3 * BLOCK_SIZE, BLOCK_SIZE)))));
  // More reads after the first ones: none may land on memory a held buffer views.
  for (let i = 0; i < blocks; i++) await s.read(((i * 7) % blocks) * 3 * BLOCK_SIZE, BLOCK_SIZE);
  for (let i = 0; i < blocks; i++) {
    assert.equal(held[i].length, BLOCK_SIZE);
    assert.ok(held[i].equals(pattern(i + 1, i * 3)), `block ${i * 3}`);
  }
  // A caller may write into what it got: the neighbouring reads do not change.
  held[0].fill(0xee);
  assert.ok(held[1].equals(pattern(2, 3)));
  assert.ok((await s.read(0, BLOCK_SIZE)).equals(pattern(1, 0)), 'the log is untouched');
  // Never-written and unmapped blocks read as zeros; a multi-block read joins runs and holes.
  assert.ok((await s.read(BLOCK_SIZE, BLOCK_SIZE)).equals(Buffer.alloc(BLOCK_SIZE)));
  await s.unmap(0, blocks + 1, 3 * BLOCK_SIZE, BLOCK_SIZE);
  const three = await s.read(0, 7 * BLOCK_SIZE);
  assert.ok(three.subarray(0, BLOCK_SIZE).equals(pattern(1, 0)));
  assert.ok(three.subarray(BLOCK_SIZE, 6 * BLOCK_SIZE).equals(Buffer.alloc(5 * BLOCK_SIZE)));
  assert.ok(three.subarray(6 * BLOCK_SIZE).equals(pattern(3, 6)));
  await s.close();
});

test('a checkpoint of index chunks of another size is refused with a clear reason, not misread', async () => {
  const dir = mk();
  const s = await open(dir, { size: 64 * MiB });
  await s.write(0, 1, 5 * BLOCK_SIZE, pattern(1, 5));
  await s.close();
  // What an earlier version, with 1024-block chunks and no size in its checkpoints, left behind.
  const db = new MetaDb(path.join(dir, 'meta'));
  await db.open();
  const ckpt = await db.checkpoint();
  assert.ok(ckpt);
  delete ckpt.chunkBlocks;
  await db.putCheckpoint(ckpt, [], []);
  await db.close();
  const again = await open(dir);
  assert.equal(again.info().state, 'error');
  assert.match(again.info().error ?? '', /chunks of 1024 blocks.*rebuild/);
  await assert.rejects(again.read(5 * BLOCK_SIZE, BLOCK_SIZE), { code: 'ERR_CORRUPT' });
  await again.close();
});

test('a multi-block read fetches blocks lying in order in one segment with one pread, across records', async (t) => {
  const s = await open(mk(), { size: 64 * MiB, segmentSize: MiB });
  const img = new Map<number, number>();
  let seq = 0;
  const write = async (lba: number, blocks = 1): Promise<void> => {
    seq++;
    await s.write(0, seq, lba * BLOCK_SIZE, pattern(seq, lba, blocks));
    for (let i = 0; i < blocks; i++) img.set(lba + i, seq);
  };
  // 64 sequential 4k writes: 64 records back to back, one header apart.
  for (let lba = 0; lba < 64; lba++) await write(lba);
  // Written backwards: in the log, the higher block comes first.
  for (let lba = 199; lba >= 100; lba--) await write(lba);
  // Every other block, then the rest: a gap of one slot between neighbours, then across segments.
  for (let lba = 300; lba < 800; lba += 2) await write(lba);
  for (let lba = 301; lba < 800; lba += 2) await write(lba, 1);
  await write(900, 40);
  await s.unmap(0, ++seq, 910 * BLOCK_SIZE, 5 * BLOCK_SIZE);
  for (let i = 910; i < 915; i++) img.delete(i);
  const expect = (lba: number, n: number): Buffer => {
    const out = Buffer.alloc(n * BLOCK_SIZE);
    for (let i = 0; i < n; i++) {
      const tag = img.get(lba + i);
      if (tag !== undefined) pattern(tag, lba + i).copy(out, i * BLOCK_SIZE);
    }
    return out;
  };
  // A counting wrapper around the real fs.read (every read still reaches the file): the only way to see how many preads a read makes.
  const fs = await import('node:fs');
  let calls = 0;
  const real = fs.default.read;
  t.mock.method(fs.default, 'read', function counted(this: unknown, ...args: unknown[]) {
    calls++;
    return (real as (...a: unknown[]) => unknown).apply(this, args);
  });
  assert.ok((await s.read(0, 64 * BLOCK_SIZE)).equals(expect(0, 64)));
  assert.equal(calls, 1, '64 adjacent 4k records, one pread');
  calls = 0;
  assert.ok((await s.read(100 * BLOCK_SIZE, 100 * BLOCK_SIZE)).equals(expect(100, 100)));
  assert.equal(calls, 100, 'blocks in reverse log order are not joined');
  for (const [lba, n] of [[0, 256], [290, 520], [895, 30], [60, 300], [780, 140]]) {
    assert.ok((await s.read(lba * BLOCK_SIZE, n * BLOCK_SIZE)).equals(expect(lba, n)), `${n} blocks at ${lba}`);
  }
  t.mock.restoreAll();
  await s.close();
});

test('1 MiB reads at once each get their own bytes while their read scratch is reused', async () => {
  const s = await open(mk(), { size: 64 * MiB });
  const extents = 12;
  for (let i = 0; i < extents; i++) await s.write(0, i + 1, i * MiB, pattern(i + 1, i * 256, 256));
  // Rounds of reads in flight together, more than the scratch pool keeps: each
  // must see its own extent, whatever scratch buffer it drew or gave back.
  for (let round = 0; round < 3; round++) {
    const order = Array.from({ length: extents }, (_, i) => (i * 5 + round) % extents);
    const got = await Promise.all(order.map((i) => s.read(i * MiB, MiB)));
    for (const [k, i] of order.entries()) assert.ok(got[k].equals(pattern(i + 1, i * 256, 256)), `round ${round}, extent ${i}`);
    // What a caller got is its own: scribbling on it changes no later read.
    for (const b of got) b.fill(0xee);
  }
  assert.ok((await s.read(5 * MiB, MiB)).equals(pattern(6, 5 * 256, 256)));
  await s.close();
});
