import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { test } from 'node:test';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, collect, open, pattern, tempDirs } from './helpers';

/**
 * The replica's own history on the real store (files, fsync, LevelDB): epoch
 * claims, epoch runs and the rebuild flag must survive restarts and
 * compaction, and a reset must empty a replica whatever its history.
 */
const mk = tempDirs();

test('a claim of the current epoch is refused, before and after a restart', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  await s.setEpoch(3);
  await assert.rejects(s.setEpoch(3), { code: 'ERR_STALE_EPOCH' });
  // Writes carrying the promised epoch still pass (fencing is for claims only).
  await s.write(3, 1, 0, pattern(1, 0));
  await s.close();
  const r = await open(dir);
  await assert.rejects(r.setEpoch(3), { code: 'ERR_STALE_EPOCH' });
  await r.setEpoch(4);
  assert.equal(r.info().epoch, 4);
  await r.close();
});

test('epoch runs follow appends, survive a restart (checkpoint plus replay) and truncation cuts them', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  for (let seq = 1; seq <= 3; seq++) await s.write(1, seq, seq * BLOCK_SIZE, pattern(seq, seq));
  await s.setEpoch(2);
  for (let seq = 4; seq <= 6; seq++) await s.write(2, seq, seq * BLOCK_SIZE, pattern(seq, seq));
  await s.unmap(2, 7, 0, BLOCK_SIZE);
  const expected = [
    { epoch: 1, from: 1, to: 3 },
    { epoch: 2, from: 4, to: 7 },
  ];
  assert.deepEqual(s.info().runs, expected);
  await s.close();
  // Reopened: runs from the checkpoint taken at close.
  const r = await open(dir);
  assert.deepEqual(r.info().runs, expected);
  await r.setEpoch(3);
  await r.write(3, 8, 0, pattern(8, 0));
  await r.truncateAfter(5);
  assert.deepEqual(r.info().runs, [
    { epoch: 1, from: 1, to: 3 },
    { epoch: 2, from: 4, to: 5 },
  ]);
  await r.close();
  const again = await open(dir);
  assert.deepEqual(again.info().runs, [
    { epoch: 1, from: 1, to: 3 },
    { epoch: 2, from: 4, to: 5 },
  ]);
  assert.equal(again.info().lastSeq, 5);
  await again.close();
});

test('after SIGKILL, epoch runs of records past the last checkpoint come back by replay, and the rebuild flag stays', async () => {
  const dir = mk();
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'history-child.js'), '--history-child', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      if (d.toString().includes('ready')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`child exited with ${code}: ${err}`))));
  });
  const r = await open(dir);
  // Above the rebuild base (5) replayed records add no runs: there a copy and a
  // live write look alike, and the next rebuild cuts back to the base anyway.
  assert.deepEqual(r.info().runs, [
    { epoch: 1, from: 1, to: 3 },
    { epoch: 2, from: 4, to: 5 },
  ]);
  assert.equal(r.info().rebuildBase, 5);
  assert.equal(r.info().epoch, 2);
  await r.close();
});

test('epoch runs survive compaction, which drops the records themselves', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB, segmentSize: MiB });
  // Overwrite the same blocks under three epochs so older segments die.
  let seq = 0;
  for (let epoch = 1; epoch <= 3; epoch++) {
    if (epoch > 1) await s.setEpoch(epoch);
    for (let i = 0; i < 300; i++) await s.write(epoch, ++seq, (i % 4) * BLOCK_SIZE, pattern(seq, i % 4));
  }
  const before = s.info().runs;
  assert.deepEqual(before, [
    { epoch: 1, from: 1, to: 300 },
    { epoch: 2, from: 301, to: 600 },
    { epoch: 3, from: 601, to: 900 },
  ]);
  const res = await s.compact({ minDeadRatio: 0.1 });
  assert.ok(res.segmentsFreed > 0, 'compaction freed segments');
  await assert.rejects(collect(s.exportRecords(0)), { code: 'ERR_NOT_FOUND' }, 'the records are gone');
  assert.deepEqual(s.info().runs, before);
  await s.close();
  const r = await open(dir);
  assert.deepEqual(r.info().runs, before);
  await r.close();
});

test('the rebuild flag persists, clears on finish or on a truncation below it, and finish adopts the runs', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  await s.setEpoch(2);
  for (let seq = 1; seq <= 4; seq++) await s.applyExtent({ type: 'data', offset: seq * BLOCK_SIZE, data: pattern(seq, seq), seq });
  await s.beginRebuild(2);
  await s.close();
  const r = await open(dir);
  assert.equal(r.info().rebuildBase, 2);
  await assert.rejects(r.finishRebuild(4, [{ epoch: 1, from: 3, to: 4 }, { epoch: 1, from: 1, to: 2 }]), { code: 'ERR_INVALID_ARGUMENT' });
  assert.equal(r.info().rebuildBase, 2, 'a refused finish changes nothing');
  await r.finishRebuild(3, [{ epoch: 1, from: 1, to: 3 }]);
  assert.equal(r.info().rebuildBase, null);
  assert.deepEqual(r.info().runs, [{ epoch: 1, from: 1, to: 3 }, { epoch: 2, from: 4, to: 4 }]);
  await r.beginRebuild(3);
  await r.truncateAfter(1);
  assert.equal(r.info().rebuildBase, null, 'below the base the log is whole again');
  await r.close();
  const again = await open(dir);
  assert.equal(again.info().rebuildBase, null);
  assert.deepEqual(again.info().runs, [{ epoch: 1, from: 1, to: 1 }]);
  await again.close();
});

test('reset empties a replica after a revert and after compaction, keeps identity, size and epoch, and lasts', async () => {
  const dir = mk();
  const s = await open(dir, { size: 2 * MiB, segmentSize: MiB });
  await s.setEpoch(1);
  let seq = 0;
  for (let i = 0; i < 300; i++) await s.write(1, ++seq, (i % 4) * BLOCK_SIZE, pattern(seq, i % 4));
  await s.createSnapshot('s1', 1, seq);
  for (let i = 0; i < 600; i++) await s.write(1, ++seq, (i % 4) * BLOCK_SIZE, pattern(seq, i % 4));
  await s.compact({ minDeadRatio: 0.1 });
  await s.revertToSnapshot('s1', 1, seq + 1);
  await assert.rejects(s.truncateAfter(10), { code: 'ERR_NOT_FOUND' }, 'a partial truncation still refuses');
  const id = s.info().replicaId;
  await s.beginRebuild(5);
  await s.reset();
  const info = s.info();
  assert.equal(info.lastSeq, 0);
  assert.equal(info.replicaId, id);
  assert.equal(info.size, 2 * MiB);
  assert.equal(info.epoch, 1);
  assert.equal(info.rebuildBase, null);
  assert.deepEqual(info.runs, []);
  assert.deepEqual(s.listSnapshots(), []);
  assert.deepEqual(await s.read(0, 4 * BLOCK_SIZE), Buffer.alloc(4 * BLOCK_SIZE));
  // A full rebuild can now fill it, and the result survives a restart.
  await s.applyExtent({ type: 'data', offset: 0, data: pattern(7, 0), seq: 3 });
  await s.write(1, 4, BLOCK_SIZE, pattern(8, 1));
  await s.close();
  const r = await open(dir);
  assert.equal(r.info().lastSeq, 4);
  assert.equal(r.info().epoch, 1);
  assert.deepEqual(r.listSnapshots(), []);
  assert.deepEqual(await r.read(0, 2 * BLOCK_SIZE), Buffer.concat([pattern(7, 0), pattern(8, 1)]));
  assert.deepEqual(await r.read(2 * BLOCK_SIZE, 2 * BLOCK_SIZE), Buffer.alloc(2 * BLOCK_SIZE));
  // A delta rebuild of it works from here on (no revert or compaction left behind).
  await r.truncateAfter(3);
  assert.equal(r.info().lastSeq, 3);
  await r.close();
});

test('truncateAfter(0) is a reset, so it always works', async () => {
  const dir = mk();
  const s = await open(dir, { size: MiB });
  await s.write(0, 1, 0, pattern(1, 0));
  await s.createSnapshot('a', 0, 1);
  await s.revertToSnapshot('a', 0, 2);
  await s.truncateAfter(0);
  assert.equal(s.info().lastSeq, 0);
  assert.deepEqual(s.listSnapshots(), []);
  await s.close();
});
