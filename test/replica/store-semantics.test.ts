import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { createRegistry } from '../../src/common/metrics';
import { silentLogger } from '../../src/common/logger';
import type { ImageExtent, LogRecord, ReplicaStore } from '../../src/replica/store-types';
import { DISK, MEMORY, blockPayload, identifyBlock, type StoreKind } from './support/replica-harness';

/**
 * One table of ReplicaStore semantics run against the in-memory store and the
 * disk store: the memory store stands in for the disk store in the
 * controller's simulations, so any difference between them is a bug here.
 */
const SIZE = 4 * 1024 * 1024;
const B = 4096;

async function withStore(kind: StoreKind, fn: (store: ReplicaStore, fresh: () => Promise<ReplicaStore>) => Promise<void>): Promise<void> {
  const cleanups: Array<() => void> = [];
  const stores: ReplicaStore[] = [];
  const open = async (): Promise<ReplicaStore> => {
    const { store, cleanup } = await kind.open({ size: SIZE, logger: silentLogger(), registry: createRegistry({ defaultMetrics: false }) });
    cleanups.push(cleanup);
    stores.push(store);
    return store;
  };
  try {
    await fn(await open(), open);
  } finally {
    for (const s of stores) await s.close().catch(() => undefined);
    for (const c of cleanups) c();
  }
}

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

for (const kind of [MEMORY, DISK]) {
  describe(`ReplicaStore semantics (${kind.name})`, () => {
    test('epochs: raised and persisted in info, older ones refused for every mutation', () =>
      withStore(kind, async (s) => {
        await s.setEpoch(4);
        assert.equal(s.info().epoch, 4);
        await assert.rejects(s.setEpoch(3), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(s.write(3, 1, 0, blockPayload(0, 1)), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(s.unmap(3, 1, 0, B), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(s.flush(3), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(s.createSnapshot('x', 3, 1), { code: 'ERR_STALE_EPOCH' });
        await s.write(4, 1, 0, blockPayload(0, 1));
        assert.equal(s.info().lastSeq, 1);
      }));

    test('ranges: misaligned and out-of-range requests carry their codes', () =>
      withStore(kind, async (s) => {
        await assert.rejects(s.write(0, 1, 100, Buffer.alloc(B)), { code: 'ERR_MISALIGNED' });
        await assert.rejects(s.write(0, 1, SIZE, Buffer.alloc(B)), { code: 'ERR_OUT_OF_RANGE' });
        await assert.rejects(s.read(SIZE - B, 2 * B), { code: 'ERR_OUT_OF_RANGE' });
        await assert.rejects(s.unmap(0, 1, 0, 100), { code: 'ERR_MISALIGNED' });
      }));

    test('per block the higher seq wins, whatever the arrival order', () =>
      withStore(kind, async (s) => {
        await s.write(0, 10, 0, blockPayload(0, 10, 2));
        await s.applyRecord({ type: 'write', epoch: 0, seq: 5, offset: B, data: blockPayload(1, 5, 2) });
        assert.deepEqual(identifyBlock(await s.read(B, B)), { block: 1, version: 10 }, 'older record lost on the overlap');
        assert.deepEqual(identifyBlock(await s.read(2 * B, B)), { block: 2, version: 5 }, 'and landed where it was newest');
        await s.applyExtent({ type: 'zero', offset: 0, length: B, seq: 7 });
        assert.deepEqual(identifyBlock(await s.read(0, B)), { block: 0, version: 10 });
        await s.unmap(0, 11, 0, B);
        assert.equal(identifyBlock(await s.read(0, B)), 'zero');
      }));

    test('snapshots freeze their view; deleting one releases it', () =>
      withStore(kind, async (s) => {
        await s.write(0, 1, 0, blockPayload(0, 1, 4));
        const snap = await s.createSnapshot('a', 0, 2);
        assert.equal(snap.seq, 2);
        await s.write(0, 3, 0, blockPayload(0, 3, 4));
        assert.deepEqual(identifyBlock(await s.read(0, B, 'a')), { block: 0, version: 1 });
        assert.deepEqual(identifyBlock(await s.read(0, B)), { block: 0, version: 3 });
        const [listed] = s.listSnapshots();
        assert.equal(listed.name, 'a');
        assert.equal(listed.sizeBytes, 4 * B);
        assert.equal(listed.exclusiveBytes, 4 * B, 'all its blocks were overwritten');
        await assert.rejects(s.createSnapshot('a', 0, 4), { code: 'ERR_ALREADY_EXISTS' });
        await s.deleteSnapshot('a');
        await assert.rejects(s.read(0, B, 'a'), { code: 'ERR_NOT_FOUND' });
        await assert.rejects(s.deleteSnapshot('a'), { code: 'ERR_NOT_FOUND' });
      }));

    test('exportRecords gives the tail in seq order; a fresh store replays it to the same head', () =>
      withStore(kind, async (s, fresh) => {
        await s.write(0, 1, 0, blockPayload(0, 1, 3));
        await s.unmap(0, 2, B, B);
        await s.createSnapshot('s', 0, 3);
        await s.write(0, 4, 2 * B, blockPayload(2, 4));
        const all = await collect(s.exportRecords(0));
        const kinds = all.filter((r) => r.type !== 'epoch').map((r) => `${r.type}@${r.seq}`);
        assert.deepEqual(kinds, ['write@1', 'unmap@2', 'snapshot@3', 'write@4']);
        assert.deepEqual((await collect(s.exportRecords(2))).filter((r) => r.type !== 'epoch').map((r) => r.seq), [3, 4]);
        const t = await fresh();
        for (const r of all as LogRecord[]) await t.applyRecord(r);
        assert.ok((await t.read(0, 4 * B)).equals(await s.read(0, 4 * B)));
        assert.ok((await t.read(0, 4 * B, 's')).equals(await s.read(0, 4 * B, 's')), 'the snapshot came along');
      }));

    test('exportImage copies the head or a snapshot, and the difference from a base', () =>
      withStore(kind, async (s, fresh) => {
        await s.write(0, 1, 0, blockPayload(0, 1, 8));
        await s.createSnapshot('base', 0, 2);
        await s.write(0, 3, 2 * B, blockPayload(2, 3, 2));
        await s.unmap(0, 4, 6 * B, B);
        const t = await fresh();
        for (const e of (await collect(s.exportImage({}))) as ImageExtent[]) await t.applyExtent(e);
        assert.ok((await t.read(0, 8 * B)).equals(await s.read(0, 8 * B)), 'full image');
        const diff = await collect(s.exportImage({ base: 'base' }));
        const touched = new Set<number>();
        for (const e of diff) for (let o = e.offset; o < e.offset + (e.type === 'data' ? e.data.length : e.length); o += B) touched.add(o / B);
        assert.deepEqual([...touched].sort((a, b) => a - b), [2, 3, 6], 'only the changed blocks');
      }));

    test('truncateAfter drops the tail; resize grows; close refuses further calls', () =>
      withStore(kind, async (s) => {
        await s.write(0, 1, 0, blockPayload(0, 1));
        await s.write(0, 2, 0, blockPayload(0, 2));
        await s.write(0, 3, B, blockPayload(1, 3));
        await s.truncateAfter(1);
        assert.equal(s.info().lastSeq, 1);
        assert.deepEqual(identifyBlock(await s.read(0, B)), { block: 0, version: 1 });
        assert.equal(identifyBlock(await s.read(B, B)), 'zero');
        await s.resize(SIZE * 2);
        assert.equal(s.info().size, SIZE * 2);
        await s.write(0, 4, SIZE, blockPayload(SIZE / B, 4));
        assert.deepEqual(identifyBlock(await s.read(SIZE, B)), { block: SIZE / B, version: 4 });
        await s.close();
        await assert.rejects(s.read(0, B), { code: 'ERR_CLOSED' });
      }));

    test('epoch claims: only strictly above the current epoch; the loser of a race is refused', () =>
      withStore(kind, async (s) => {
        await s.setEpoch(2);
        await assert.rejects(s.setEpoch(2), { code: 'ERR_STALE_EPOCH' });
        const race = await Promise.allSettled([s.setEpoch(3), s.setEpoch(3)]);
        assert.deepEqual(race.map((r) => r.status).sort(), ['fulfilled', 'rejected'], 'one of two equal claims wins');
        assert.equal(s.info().epoch, 3);
        await s.write(3, 1, 0, blockPayload(0, 1));
      }));

    test('epoch runs and the rebuild flag: kept by appends, cut by truncation, adopted on finish', () =>
      withStore(kind, async (s) => {
        await s.setEpoch(1);
        await s.write(1, 1, 0, blockPayload(0, 1));
        await s.write(1, 2, B, blockPayload(1, 2));
        await s.setEpoch(2);
        await s.unmap(2, 3, 0, B);
        await s.write(2, 4, B, blockPayload(1, 4));
        // Out of order, as a delta rebuild interleaving with live writes delivers them.
        await s.write(2, 7, B, blockPayload(1, 7));
        await s.applyRecord({ type: 'write', epoch: 2, seq: 5, offset: 0, data: blockPayload(0, 5) });
        assert.deepEqual(s.info().runs, [
          { epoch: 1, from: 1, to: 2 },
          { epoch: 2, from: 3, to: 5 },
          { epoch: 2, from: 7, to: 7 },
        ]);
        assert.equal(s.info().rebuildBase, null);
        await s.beginRebuild(4);
        assert.equal(s.info().rebuildBase, 4);
        await s.finishRebuild(6, [{ epoch: 1, from: 1, to: 6 }]);
        assert.equal(s.info().rebuildBase, null);
        assert.deepEqual(s.info().runs, [
          { epoch: 1, from: 1, to: 6 },
          { epoch: 2, from: 7, to: 7 },
        ]);
        await s.truncateAfter(4);
        assert.deepEqual(s.info().runs, [{ epoch: 1, from: 1, to: 4 }]);
      }));

    test('reset empties the replica even after a revert, keeping size and epoch', () =>
      withStore(kind, async (s) => {
        await s.setEpoch(3);
        await s.write(3, 1, 0, blockPayload(0, 1));
        await s.createSnapshot('a', 3, 1);
        await s.write(3, 2, 0, blockPayload(0, 2));
        await s.revertToSnapshot('a', 3, 3);
        await assert.rejects(s.truncateAfter(1), { code: 'ERR_NOT_FOUND' });
        await s.beginRebuild(1);
        await s.reset();
        const info = s.info();
        assert.deepEqual([info.lastSeq, info.epoch, info.size, info.rebuildBase, info.runs.length], [0, 3, SIZE, null, 0]);
        assert.deepEqual(s.listSnapshots(), []);
        assert.equal(identifyBlock(await s.read(0, B)), 'zero');
        await s.applyExtent({ type: 'data', offset: 0, data: blockPayload(0, 2), seq: 2 });
        await s.write(3, 3, B, blockPayload(1, 3));
        assert.deepEqual(identifyBlock(await s.read(0, B)), { block: 0, version: 2 });
        await s.truncateAfter(2);
        assert.equal(identifyBlock(await s.read(B, B)), 'zero', 'a delta truncation works again after the reset');
      }));

    test('while a rebuild is unfinished, scattered copies add no runs; live writes do; finish installs the source history', () =>
      withStore(kind, async (s) => {
        await s.setEpoch(9);
        await s.beginRebuild(0);
        // A full copy: extents in block order carry scattered, descending seqs.
        for (let i = 0; i < 512; i++) await s.applyExtent({ type: 'data', offset: (i % 1024) * B, data: blockPayload(i % 1024, 2000 - 2 * i), seq: 2000 - 2 * i });
        await s.applyRecord({ type: 'write', epoch: 4, seq: 1999, offset: 0, data: blockPayload(0, 1999) });
        await s.write(9, 2001, B, blockPayload(1, 2001));
        await s.write(9, 2002, 2 * B, blockPayload(2, 2002));
        assert.deepEqual(s.info().runs, [{ epoch: 9, from: 2001, to: 2002 }]);
        await s.finishRebuild(2000, [{ epoch: 3, from: 1, to: 1500 }, { epoch: 4, from: 1501, to: 2000 }]);
        assert.deepEqual(s.info().runs, [
          { epoch: 3, from: 1, to: 1500 },
          { epoch: 4, from: 1501, to: 2000 },
          { epoch: 9, from: 2001, to: 2002 },
        ]);
      }));
  });
}
