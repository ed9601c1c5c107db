import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { SIM_BLOCK } from './sim/sim-replica';
import { World, pattern } from './sim/world';

const B = SIM_BLOCK;

describe('snapshots (invariant 7)', () => {
  test('a snapshot cut among concurrent writes holds the same content on every replica', async () => {
    const world = new World(21, 3, 32, [1, 30]);
    const engine = await world.open();
    const before = Array.from({ length: 8 }, (_, i) => engine.write(i * B, pattern(i + 1, i)));
    const cut = engine.snapshots.create('s1');
    const after = Array.from({ length: 8 }, (_, i) => engine.write(i * B, pattern(i + 100, i)));
    await world.run(Promise.all([...before, cut, ...after]));
    const info = await cut;
    assert.equal(info.seq, 8, 'the cut sits after the 8 writes issued before it');
    for (const r of world.replicas) {
      assert.equal(r.snapshots.get('s1')?.seq, 8);
      for (let i = 0; i < 8; i++) {
        assert.deepEqual(r.read(i * B, B, 's1'), pattern(i + 1, i), `${r.id} block ${i} in the snapshot`);
        assert.deepEqual(r.read(i * B, B), pattern(i + 100, i), `${r.id} block ${i} in the head`);
      }
    }
    await world.run(engine.close());
  });

  test('writes held behind two snapshot barriers take their seqs in the order they arrived', async () => {
    // Regression: a write released by the first barrier must be stamped before
    // the second barrier closes the gate again, or a later write to the same
    // block gets a lower seq and the older data wins on every replica.
    const world = new World(23, 3, 32, [1, 30]);
    const engine = await world.open();
    const first = engine.snapshots.create('s1');
    const a = engine.write(0, pattern(1, 0));
    const second = engine.snapshots.create('s2');
    const b = engine.write(0, pattern(2, 0));
    const c = engine.write(B, pattern(3, 1));
    await world.run(Promise.all([first, a, second, b, c]));
    const [s1, s2] = [await first, await second];
    assert.ok(s1.seq < s2.seq, `s1 at ${s1.seq} is cut before s2 at ${s2.seq}`);
    for (const r of world.replicas) {
      assert.deepEqual(r.read(0, B), pattern(2, 0), `${r.id}: the write that arrived last wins`);
      assert.deepEqual(r.read(0, B, 's2'), pattern(1, 0), `${r.id}: s2 holds the write that arrived before it`);
      assert.deepEqual(r.read(B, B), pattern(3, 1));
    }
    for (const link of world.linksOf(engine)) {
      assert.deepEqual(link.sentSeqs, [...link.sentSeqs].sort((x, y) => x - y), `${link.id} saw seqs in order`);
    }
    await world.run(engine.close());
  });

  test('list, duplicate and delete', async () => {
    const world = new World(22, 3);
    const engine = await world.open();
    await world.run(engine.snapshots.create('a'));
    await assert.rejects(world.run(engine.snapshots.create('a')), { code: 'ERR_ALREADY_EXISTS' });
    assert.deepEqual(
      (await world.run(engine.snapshots.list())).map((s) => s.name),
      ['a'],
    );
    await world.run(engine.snapshots.delete('a'));
    assert.ok(world.replicas.every((r) => r.snapshots.size === 0));
    await assert.rejects(world.run(engine.snapshots.delete('a')), { code: 'ERR_NOT_FOUND' });
    await world.run(engine.close());
  });

  test('snapshots need a quorum like writes do', async () => {
    const world = new World(23, 3);
    const engine = await world.open();
    world.replicas[0].crash();
    world.replicas[1].crash();
    await world.run(engine.write(0, pattern(1, 0)).catch(() => undefined));
    await assert.rejects(world.run(engine.snapshots.create('x')), (err: unknown) => err instanceof BlockDeviceError && err.kind === 'unavailable');
    await world.run(engine.close());
  });

  test('revert is refused while an initiator is attached, then restores the snapshot everywhere', async () => {
    const world = new World(24, 3);
    let attached = true;
    const engine = await world.open({}, () => attached);
    await world.run(engine.write(0, pattern(1, 0)));
    await world.run(engine.snapshots.create('base'));
    await world.run(engine.write(0, pattern(2, 0)));
    await world.run(engine.write(B, pattern(3, 1)));
    await assert.rejects(world.run(engine.snapshots.revert('base')), { code: 'ERR_BUSY' });
    attached = false;
    world.replicas[2].crash();
    await world.run(engine.write(2 * B, pattern(4, 2)));
    await world.run(engine.snapshots.revert('base'));
    assert.deepEqual(await world.run(engine.read(0, 3 * B)), Buffer.concat([pattern(1, 0), Buffer.alloc(2 * B)]));
    // The replica that missed the revert catches up by replaying it.
    world.replicas[2].restart();
    await world.healthy(engine);
    for (const r of world.replicas) assert.deepEqual(r.read(0, 3 * B), Buffer.concat([pattern(1, 0), Buffer.alloc(2 * B)]), r.id);
    await world.run(engine.close());
  });
});
