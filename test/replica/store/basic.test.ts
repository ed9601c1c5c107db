import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, open, pattern, tempDirs } from './helpers';

const mk = tempDirs();

test('creating needs a size; a size mismatch on open is a clear error', async () => {
  const dir = mk();
  await assert.rejects(open(dir), { code: 'ERR_INVALID_ARGUMENT' });
  const s = await open(dir, { size: 4 * MiB, volumeId: 'vol-a' });
  assert.equal(s.info().size, 4 * MiB);
  assert.equal(s.info().volumeId, 'vol-a');
  await s.close();
  await assert.rejects(open(dir, { size: 8 * MiB }), { code: 'ERR_INVALID_ARGUMENT', message: /size mismatch/ });
  const again = await open(dir, { size: 4 * MiB });
  assert.equal(again.info().volumeId, 'vol-a');
  await again.close();
});

test('write, read, unmap, flush and restart', async () => {
  const dir = mk();
  const s = await open(dir, { size: 16 * MiB });
  await s.setEpoch(1);
  assert.deepEqual(await s.read(0, 2 * BLOCK_SIZE), Buffer.alloc(2 * BLOCK_SIZE), 'never written reads zeros');
  await s.write(1, 1, 0, pattern(1, 0, 4));
  await s.write(1, 2, 8 * BLOCK_SIZE, pattern(2, 8, 256));
  await s.write(1, 3, 2 * BLOCK_SIZE, pattern(3, 2));
  await s.unmap(1, 4, 10 * BLOCK_SIZE, 2 * BLOCK_SIZE);
  await s.flush(1);
  const expect = Buffer.concat([pattern(1, 0, 2), pattern(3, 2), pattern(1, 3), Buffer.alloc(4 * BLOCK_SIZE), pattern(2, 8, 2), Buffer.alloc(2 * BLOCK_SIZE), pattern(2, 12, 4)]);
  assert.deepEqual(await s.read(0, 16 * BLOCK_SIZE), expect);
  assert.equal(s.info().lastSeq, 4);
  assert.equal(s.info().durableSeq, 4);
  await s.close();
  const r = await open(dir);
  assert.equal(r.info().lastSeq, 4);
  assert.equal(r.info().epoch, 1);
  assert.deepEqual(await r.read(0, 16 * BLOCK_SIZE), expect);
  await r.close();
});

test('bad arguments get clear errors and the store keeps serving', async () => {
  const dir = mk();
  const s = await open(dir, { size: 1 * MiB });
  await s.setEpoch(3);
  await assert.rejects(s.write(3, 1, 100, Buffer.alloc(BLOCK_SIZE)), { code: 'ERR_MISALIGNED' });
  await assert.rejects(s.write(3, 1, MiB, Buffer.alloc(BLOCK_SIZE)), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(s.read(0, 10), { code: 'ERR_MISALIGNED' });
  await assert.rejects(s.write(2, 1, 0, Buffer.alloc(BLOCK_SIZE)), { code: 'ERR_STALE_EPOCH' });
  await assert.rejects(s.setEpoch(2), { code: 'ERR_STALE_EPOCH' });
  await assert.rejects(s.read(0, BLOCK_SIZE, 'nope'), { code: 'ERR_NOT_FOUND' });
  await assert.rejects(s.resize(BLOCK_SIZE), { code: 'ERR_INVALID_ARGUMENT' });
  await s.write(3, 1, 0, pattern(9, 0));
  assert.deepEqual(await s.read(0, BLOCK_SIZE), pattern(9, 0));
  await s.close();
  await assert.rejects(s.read(0, BLOCK_SIZE), { code: 'ERR_CLOSED' });
});

test('epoch persists before setEpoch resolves and fences older writers after restart', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  await s.setEpoch(5);
  await s.close();
  const r = await open(dir);
  assert.equal(r.info().epoch, 5);
  await assert.rejects(r.write(4, 1, 0, Buffer.alloc(BLOCK_SIZE)), { code: 'ERR_STALE_EPOCH' });
  await r.close();
});

test('higher seq wins per block, whatever order records arrive in', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  await s.applyRecord({ type: 'write', epoch: 1, seq: 10, offset: 0, data: pattern(10, 0, 2) });
  await s.applyRecord({ type: 'write', epoch: 1, seq: 5, offset: BLOCK_SIZE, data: pattern(5, 1, 2) });
  await s.applyExtent({ type: 'zero', offset: 0, length: BLOCK_SIZE, seq: 7 });
  await s.applyExtent({ type: 'data', offset: 2 * BLOCK_SIZE, data: pattern(11, 2), seq: 11 });
  const expect = Buffer.concat([pattern(10, 0), pattern(10, 1), pattern(11, 2)]);
  assert.deepEqual(await s.read(0, 3 * BLOCK_SIZE), expect);
  await s.close();
  const r = await open(dir);
  assert.deepEqual(await r.read(0, 3 * BLOCK_SIZE), expect);
  await r.close();
});

test('resize grows the volume; metrics are reported', async () => {
  const dir = mk();
  const registry = new Registry();
  const s = await open(dir, { size: MiB, registry });
  await s.resize(2 * MiB);
  await s.write(0, 1, MiB, pattern(1, 256));
  assert.deepEqual(await s.read(MiB, BLOCK_SIZE), pattern(1, 256));
  await s.flush(0);
  const text = await registry.metrics();
  assert.match(text, /trireme_replica_store_appends_total\{replica="[^"]+",type="1"\} 1/);
  assert.match(text, /trireme_replica_store_fsync_seconds_count\{replica="[^"]+"\} [1-9]/);
  assert.match(text, /trireme_replica_store_segments_total\{replica="[^"]+"\} 1/);
  await s.close();
  const r = await open(dir);
  assert.equal(r.info().size, 2 * MiB);
  assert.deepEqual(await r.read(MiB, BLOCK_SIZE), pattern(1, 256));
  await r.close();
});

test('group commit: concurrent FUA writes and flushes share fdatasyncs', async () => {
  const registry = new Registry();
  const s = await open(mk(), { size: 4 * MiB, registry });
  const fsyncs = async (): Promise<number> => {
    const m = /trireme_replica_store_fsync_seconds_count\{[^}]*\} (\d+)/.exec(await registry.metrics());
    return m ? Number(m[1]) : 0;
  };
  const before = await fsyncs();
  const ops: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) {
    ops.push(s.write(0, i + 1, i * BLOCK_SIZE, pattern(i, i), true));
    ops.push(s.flush(0));
  }
  await Promise.all(ops);
  const used = (await fsyncs()) - before;
  assert.ok(used >= 1 && used < 32, `${used} fdatasyncs for 64 FUA writes and 64 flushes`);
  assert.equal(s.info().durableSeq, 64);
  assert.deepEqual(await s.read(0, 64 * BLOCK_SIZE), Buffer.concat(Array.from({ length: 64 }, (_, i) => pattern(i, i))));
  await s.close();
});

test('close while writes are in flight: each one settles, acknowledged ones survive', async () => {
  const dir = mk();
  const s = await open(dir, { size: 4 * MiB });
  const writes = Array.from({ length: 100 }, (_, i) => s.write(0, i + 1, (i % 64) * BLOCK_SIZE, pattern(i + 1, i % 64)));
  const closing = s.close();
  const settled = await Promise.allSettled(writes);
  await closing;
  const done = new Map<number, number>();
  settled.forEach((r, i) => {
    if (r.status === 'fulfilled') done.set(i % 64, i + 1);
    else assert.equal((r.reason as { code?: string }).code, 'ERR_CLOSED');
  });
  const r = await open(dir);
  for (const [lba, seq] of done) assert.deepEqual(await r.read(lba * BLOCK_SIZE, BLOCK_SIZE), pattern(seq, lba));
  await r.close();
});
