import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { VolumeEngine } from '../../../src/controller/engine/volume-engine';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { ReplicaProcesses } from './support/replica-processes';

// Fencing, history and full rebuilds over real `trireme replica` processes
// (real TCP, gRPC, files and LevelDB): two controllers racing for a volume,
// and a replica set grown after a snapshot revert (the replicas' logs can no
// longer be truncated, so a full rebuild must empty its target another way).
const MiB = 1024 * 1024;
const SIZE = 8 * MiB;
const B = 4096;
const OP_TIMEOUT = 1500;

const dir = mkdtempSync(join(tmpdir(), 'trireme-history-'));
const replicas = new ReplicaProcesses(dir, SIZE, 'hist');
const engines: VolumeEngine[] = [];
const block = (tag: number): Buffer => Buffer.alloc(B, tag);

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function open(which: readonly number[], openTimeoutMs?: number): Promise<VolumeEngine> {
  const engine = await replicas.openEngine(which, OP_TIMEOUT, openTimeoutMs);
  engines.push(engine);
  return engine;
}

before(async () => {
  await replicas.allocate(3);
  await Promise.all([0, 1, 2].map((i) => replicas.start(i)));
});

after(async () => {
  for (const e of engines) await e.close().catch(() => undefined);
  await replicas.killAll();
  rmSync(dir, { recursive: true, force: true });
});

test('a snapshot revert then a new replica: the reopened engine reaches quorum and rebuilds the newcomer in full', async () => {
  // The volume starts on r0 and r1.
  const first = await open([0, 1]);
  await first.write(0, block(1));
  await first.write(B, block(2));
  await first.snapshots.create('s');
  await first.write(0, block(3));
  await first.snapshots.revert('s');
  await first.write(2 * B, block(4));
  await first.flush();
  await first.close();
  // `trireme replica add`: the engine is reopened over the grown set.
  const grown = await open([0, 1, 2]);
  await until('three replicas in RW', () => grown.status().state === 'healthy');
  assert.deepEqual(await grown.read(0, 3 * B), Buffer.concat([block(1), block(2), block(4)]));
  const epoch = grown.status().epoch;
  const images = await Promise.all([0, 1, 2].map((i) => replicas.image(i, epoch)));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
  await grown.close();
});

test('a reverted replica that must be rebuilt in full is emptied instead of retried forever', async () => {
  // r2 holds the revert of the previous test too; losing the volume's later
  // history, it can be caught up only by a full copy after a reset.
  const engine = await open([0, 1, 2]);
  await engine.snapshots.create('t');
  await engine.write(3 * B, block(5));
  await engine.snapshots.revert('t');
  await replicas.kill(2);
  await engine.snapshots.delete('t');
  for (let i = 0; i < 20; i++) await engine.write((10 + i) * B, block(20 + i));
  const seen = replicas.logLines.length;
  await replicas.start(2);
  await until('r2 back in RW', () => engine.status().state === 'healthy');
  const rebuilds = replicas.logLines.slice(seen).filter((l) => l.includes('"rebuild started"'));
  assert.ok(rebuilds.length > 0, 'r2 was rebuilt');
  await engine.flush();
  const epoch = engine.status().epoch;
  const images = await Promise.all([0, 1, 2].map((i) => replicas.image(i, epoch)));
  assert.ok(images[0].equals(images[2]) && images[1].equals(images[2]), 'r2 matches after its rebuild');
  await engine.close();
});

test('two controllers starting at the same moment never share an epoch; one serves, the other stands down', async () => {
  for (let round = 0; round < 3; round++) {
    const race = await Promise.allSettled([open([0, 1, 2], 15_000), open([0, 1, 2], 15_000)]);
    const up = race.filter((r): r is PromiseFulfilledResult<VolumeEngine> => r.status === 'fulfilled').map((r) => r.value);
    assert.ok(up.length >= 1, `round ${round}: a controller got the volume`);
    // Writes through every engine that opened: only one may succeed, at its own epoch.
    const results = await Promise.allSettled(up.map((e, k) => e.write(40 * B, block(100 + round * 2 + k))));
    const ok = results.flatMap((r, k) => (r.status === 'fulfilled' ? [up[k]] : []));
    for (const r of results) if (r.status === 'rejected') assert.ok(r.reason instanceof BlockDeviceError, String(r.reason));
    if (up.length === 2) assert.notEqual(up[0].status().epoch, up[1].status().epoch, `round ${round}: two engines hold one epoch`);
    assert.ok(ok.length <= 1, `round ${round}: ${ok.length} controllers accepted a write`);
    if (ok.length === 1) {
      const winner = ok[0];
      const k = up.indexOf(winner);
      assert.deepEqual(await winner.read(40 * B, B), block(100 + round * 2 + k));
    }
    for (const e of up) await e.close();
  }
});
