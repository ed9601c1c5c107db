import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { VolumeEngine } from '../../../src/controller/engine/volume-engine';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { ReplicaProcesses } from './support/replica-processes';

// The engine over three real `trireme replica` processes (real TCP, real
// files): SIGKILL mid-write and a delta rebuild, two replicas lost, SIGSTOP.
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const B = 4096;
const OP_TIMEOUT = 1500;

const dir = mkdtempSync(join(tmpdir(), 'trireme-engine-'));
const replicas = new ReplicaProcesses(dir, SIZE, 'net');
const { ports, logLines } = replicas;
let engine: VolumeEngine;

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(engine.status())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const block = (tag: number): Buffer => Buffer.alloc(B, tag);

/** The whole volume as one replica holds it, at the current engine's epoch. */
const replicaImage = (i: number): Promise<Buffer> => replicas.image(i, engine.status().epoch);
const openEngine = (): Promise<VolumeEngine> => replicas.openEngine([0, 1, 2], OP_TIMEOUT);

before(async () => {
  await replicas.allocate(3);
  await Promise.all([0, 1, 2].map((i) => replicas.start(i)));
  engine = await openEngine();
});

after(async () => {
  await engine?.close();
  await replicas.killAll();
  rmSync(dir, { recursive: true, force: true });
});

test('opens healthy over three replica processes and round-trips data', async () => {
  assert.equal(engine.status().state, 'healthy');
  await engine.write(0, block(1));
  await engine.write(B, block(2), { fua: true });
  await engine.flush();
  assert.deepEqual(await engine.read(0, 2 * B), Buffer.concat([block(1), block(2)]));
});

test('SIGKILL of one replica mid-write: writes go on, it returns, catches up by delta and matches', async () => {
  const writes: Array<Promise<void>> = [];
  for (let i = 0; i < 200; i++) {
    writes.push(engine.write((i % 256) * B, block(10 + (i % 200))));
    if (i === 50) await replicas.kill(2);
  }
  await Promise.all(writes);
  assert.equal(engine.status().replicas[2].mode, 'ERR');
  for (let i = 0; i < 50; i++) await engine.write((300 + i) * B, block(7));
  await replicas.start(2);
  await until('the killed replica back in RW', () => engine.status().state === 'healthy');
  assert.ok(
    logLines.some((l) => l.includes('"rebuild started"') && l.includes('"kind":"delta"')),
    'the returning replica caught up by delta',
  );
  await engine.flush();
  const images = await Promise.all([0, 1, 2].map(replicaImage));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
  assert.deepEqual(await engine.read(300 * B, B), block(7));
});

test('two replicas killed: writes fail with unavailable, reads continue, then it heals', async () => {
  await engine.write(400 * B, block(40));
  await Promise.all([replicas.kill(1), replicas.kill(2)]);
  await assert.rejects(engine.write(401 * B, block(41)), (err: unknown) => err instanceof BlockDeviceError && err.kind === 'unavailable');
  assert.equal(engine.status().state, 'offline');
  assert.deepEqual(await engine.read(400 * B, B), block(40));
  await Promise.all([replicas.start(1), replicas.start(2)]);
  await until('both replicas back', () => engine.status().state === 'healthy');
  await engine.write(401 * B, block(42));
  assert.deepEqual(await engine.read(400 * B, 2 * B), Buffer.concat([block(40), block(42)]));
});

test('a SIGSTOPped replica is dropped within the op timeout and rejoins after SIGCONT', async () => {
  replicas.signal(0, 'SIGSTOP');
  const started = Date.now();
  await engine.write(500 * B, block(50));
  const waited = Date.now() - started;
  assert.ok(waited < OP_TIMEOUT + 1000, `write waited ${waited} ms`);
  assert.equal(engine.status().replicas[0].mode, 'ERR');
  replicas.signal(0, 'SIGCONT');
  await until('the stopped replica back', () => engine.status().state === 'healthy');
  const images = await Promise.all([0, 1, 2].map(replicaImage));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
});

test('an unacknowledged write left on one replica is cut off when a newer controller took over without it', async () => {
  const first = engine;
  await first.write(600 * B, block(59));
  // r1 and r2 stop: the next write reaches r0 alone and fails after the op timeout.
  replicas.signal(1, 'SIGSTOP');
  replicas.signal(2, 'SIGSTOP');
  await assert.rejects(first.write(600 * B, block(60)), (err: unknown) => err instanceof BlockDeviceError && err.kind === 'unavailable');
  assert.deepEqual((await replicaImage(0)).subarray(600 * B, 601 * B), block(60), 'the failed write landed on r0');
  // They die without ever reading it; r0 goes away before a new controller starts.
  await Promise.all([replicas.kill(1), replicas.kill(2)]);
  await first.close();
  await replicas.kill(0);
  await Promise.all([replicas.start(1), replicas.start(2)]);
  engine = await openEngine();
  assert.equal(engine.status().epoch, first.status().epoch + 1);
  await engine.write(601 * B, block(61));
  assert.deepEqual(await engine.read(600 * B, B), block(59), 'the new history never had the failed write');
  // r0 returns with its tail from the older epoch: it is truncated, then caught up.
  const seen = logLines.length;
  await replicas.start(0);
  await until('r0 back in RW', () => engine.status().state === 'healthy');
  const rebuild = logLines.slice(seen).find((l) => l.includes('"rebuild started"') && l.includes(`127.0.0.1:${ports[0]}`));
  assert.match(rebuild ?? '', /"kind":"delta"/, 'cut back to the divergence point, then a delta, not a full copy');
  const images = await Promise.all([0, 1, 2].map(replicaImage));
  assert.deepEqual(images[0].subarray(600 * B, 602 * B), Buffer.concat([block(59), block(61)]));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
});
