import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { SIM_BLOCK } from './sim/sim-replica';
import { World, pattern } from './sim/world';

// The engine over in-memory replicas on a virtual clock (sim/): the product's
// replica store is exercised by its own tests; here the subject is the engine.

const B = SIM_BLOCK;

async function rejectsWith(world: World, promise: Promise<unknown>, kind: string): Promise<void> {
  await assert.rejects(world.run(promise), (err: unknown) => err instanceof BlockDeviceError && err.kind === kind);
}

describe('VolumeEngine over three replicas', () => {
  test('opens healthy, raises the epoch on every replica and stamps increasing seqs', async () => {
    const world = new World(1, 3);
    const engine = await world.open();
    assert.equal(engine.status().state, 'healthy');
    assert.deepEqual(
      world.replicas.map((r) => r.epoch),
      [1, 1, 1],
    );
    await world.run(engine.write(0, pattern(7, 0)));
    await world.run(engine.write(B, pattern(8, 1)));
    for (const r of world.replicas) {
      assert.ok(r.hasRecord(1, 1) && r.hasRecord(1, 2), `${r.id} holds both records`);
    }
    assert.deepEqual(await world.run(engine.read(0, 2 * B)), Buffer.concat([pattern(7, 0), pattern(8, 1)]));
    assert.deepEqual(world.linksOf(engine)[0].sentSeqs, [1, 2]);
    await world.run(engine.close());
  });

  test('a crashed replica is dropped, writes go on with two, and it rebuilds to identical content', async () => {
    const world = new World(2, 3);
    const engine = await world.open();
    await world.run(engine.write(0, pattern(1, 0)));
    world.replicas[2].crash();
    await world.run(engine.write(B, pattern(2, 1)));
    assert.equal(engine.status().replicas[2].mode, 'ERR');
    assert.equal(engine.status().state, 'degraded');
    await world.run(engine.write(2 * B, pattern(3, 2)));
    assert.ok(!world.replicas[2].hasRecord(1, 3));
    world.replicas[2].restart();
    await world.healthy(engine);
    for (let b = 0; b < 3; b++) assert.deepEqual(world.replicas[2].read(b * B, B), world.replicas[0].read(b * B, B));
    assert.equal(world.replicas[2].rebuildBase, null);
    await world.run(engine.close());
  });

  test('with two replicas down writes fail with unavailable while reads continue', async () => {
    const world = new World(3, 3);
    const engine = await world.open();
    await world.run(engine.write(0, pattern(5, 0)));
    world.replicas[1].crash();
    world.replicas[2].crash();
    await rejectsWith(world, engine.write(B, pattern(6, 1)), 'unavailable');
    assert.equal(engine.status().state, 'offline');
    await rejectsWith(world, engine.flush(), 'unavailable');
    await rejectsWith(world, engine.unmap(0, B), 'unavailable');
    assert.deepEqual(await world.run(engine.read(0, B)), pattern(5, 0));
    world.replicas[1].restart();
    world.replicas[2].restart();
    await world.healthy(engine);
    await world.run(engine.write(B, pattern(9, 1)));
    assert.deepEqual(await world.run(engine.read(B, B)), pattern(9, 1));
    await world.run(engine.close());
  });

  test('a stopped replica is dropped within the op timeout and the write acks meanwhile', async () => {
    const world = new World(4, 3);
    const engine = await world.open({ opTimeoutMs: 1500 });
    world.replicas[0].stop();
    const started = world.clock.now();
    await world.run(engine.write(0, pattern(11, 0)));
    const waited = world.clock.now() - started;
    assert.ok(waited >= 1500 && waited < 1600, `waited ${waited} ms`);
    assert.equal(engine.status().replicas[0].mode, 'ERR');
    world.replicas[0].resume();
    await world.healthy(engine);
    await world.run(engine.close());
  });

  test('a second controller fences the first: its writes fail, the epoch is higher', async () => {
    const world = new World(5, 3);
    const first = await world.open();
    await world.run(first.write(0, pattern(1, 0)));
    const second = await world.open();
    assert.equal(second.status().epoch, 2);
    await rejectsWith(world, first.write(B, pattern(2, 1)), 'unavailable');
    assert.equal(first.status().state, 'offline');
    await world.run(second.write(B, pattern(3, 1)));
    assert.deepEqual(await world.run(second.read(0, 2 * B)), Buffer.concat([pattern(1, 0), pattern(3, 1)]));
    await world.run(second.close());
    await world.run(first.close());
  });

  test('an un-acknowledged tail from an older epoch is cut back to the divergence point', async () => {
    const world = new World(6, 3);
    const [r1, r2, r3] = world.replicas;
    for (const r of world.replicas) r.setEpoch(1);
    for (const r of world.replicas) r.write(1, 1, 0, pattern(1, 0), false);
    // Epoch 1 reached r1 alone with seq 2 (never acknowledged) ...
    r1.write(1, 2, B, pattern(2, 1), false);
    // ... then a controller with epoch 2 wrote its own seq 2 and 3 on r2 and r3.
    for (const r of [r2, r3]) {
      r.setEpoch(2);
      r.write(2, 2, 2 * B, pattern(3, 2), false);
      r.write(2, 3, 3 * B, pattern(4, 3), false);
    }
    const engine = await world.open();
    await world.healthy(engine);
    assert.deepEqual(r1.read(B, B), Buffer.alloc(B), 'the divergent write is gone');
    assert.deepEqual(r1.read(2 * B, 2 * B), Buffer.concat([pattern(3, 2), pattern(4, 3)]));
    assert.ok(!r1.hasRecord(1, 2));
    await world.run(engine.close());
  });

  test('a replica whose history was compacted away on the source is rebuilt in full', async () => {
    const world = new World(7, 3);
    const engine = await world.open();
    await world.run(engine.write(0, pattern(1, 0)));
    world.replicas[2].crash();
    await world.run(engine.write(B, pattern(2, 1)));
    await world.run(engine.unmap(0, B));
    world.replicas[0].compact();
    world.replicas[1].compact();
    world.replicas[2].restart();
    await world.healthy(engine);
    assert.deepEqual(world.replicas[2].read(0, 2 * B), Buffer.concat([Buffer.alloc(B), pattern(2, 1)]));
    await world.run(engine.close());
  });

  test('flush and FUA reach stable storage on every RW replica before the ack', async () => {
    const world = new World(8, 3);
    const engine = await world.open();
    await world.run(engine.write(0, pattern(1, 0)));
    assert.ok(world.replicas.every((r) => r.durableSeq < 1));
    await world.run(engine.flush());
    assert.ok(world.replicas.every((r) => r.durableSeq >= 1));
    await world.run(engine.write(B, pattern(2, 1), { fua: true }));
    assert.ok(world.replicas.every((r) => r.durableSeq >= 2));
    await world.run(engine.close());
  });

  test('bad input gets a clear error and the volume keeps serving', async () => {
    const world = new World(9, 3);
    const engine = await world.open();
    await rejectsWith(world, engine.write(100, pattern(1, 0)), 'io');
    await rejectsWith(world, engine.read(32 * B, B), 'io');
    await assert.rejects(world.run(engine.resize(B)), { code: 'ERR_INVALID_ARGUMENT' });
    await assert.rejects(world.run(engine.snapshots.create('bad name!')), { code: 'ERR_INVALID_ARGUMENT' });
    await world.run(engine.write(0, pattern(1, 0)));
    assert.deepEqual(await world.run(engine.read(0, B)), pattern(1, 0));
    await world.run(engine.close());
  });

  test('grows the volume on every replica and tells listeners', async () => {
    const world = new World(10, 3);
    const engine = await world.open();
    const seen: number[] = [];
    engine.onResize((size) => seen.push(size));
    await world.run(engine.resize(64 * B));
    assert.deepEqual(seen, [64 * B]);
    assert.ok(world.replicas.every((r) => r.size === 64 * B));
    await world.run(engine.write(63 * B, pattern(3, 63)));
    await world.run(engine.close());
  });

  test('rebuild progress is visible and throttled', async () => {
    const world = new World(11, 3);
    const engine = await world.open({ rebuildBytesPerSecond: 16 * B });
    world.replicas[2].crash();
    for (let b = 0; b < 16; b++) await world.run(engine.write(b * B, pattern(b + 1, b)));
    world.replicas[2].restart();
    const seenProgress = await world.clock.runUntil(() => (engine.status().replicas[2].rebuild?.bytesDone ?? 0) > 0, 30_000);
    assert.ok(seenProgress);
    const progress = engine.status().replicas[2].rebuild!;
    assert.equal(engine.status().state, 'rebuilding');
    assert.equal(engine.status().replicas[2].mode, 'WO');
    assert.ok(progress.bytesTotal >= 16 * B && progress.bytesDone < progress.bytesTotal);
    const started = world.clock.now();
    await world.healthy(engine);
    assert.ok(world.clock.now() - started >= 800, 'the copy of 16 blocks at 16 blocks/s takes about a second');
    const metrics = await world.registry.metrics();
    assert.match(metrics, /trireme_controller_rebuild_done_bytes\{volume="vol-sim",replica="r3"\} 65536/);
    assert.match(metrics, /trireme_controller_ops_total\{volume="vol-sim",op="write",result="ok"\} 16/);
    await world.run(engine.close());
  });
});
