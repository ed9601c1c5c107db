import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { PassThrough } from 'node:stream';
import { after, before, test } from 'node:test';
import { Registry } from 'prom-client';
import { createRootLogger } from '../../../src/common/logger';
import { NetworkReplicaLink } from '../../../src/controller/engine/network-replica-link';
import { VolumeEngine } from '../../../src/controller/engine/volume-engine';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { ReplicaClient } from '../../../src/replica/client/replica-client';

// The engine over three real `trireme replica` processes (real TCP, real
// files): SIGKILL mid-write and a delta rebuild, two replicas lost, SIGSTOP.
const MAIN = resolve(__dirname, '..', '..', '..', 'src', 'cli', 'main.js');
const LAUNCH = `require(${JSON.stringify(MAIN)}).main(process.argv).catch((e) => { process.stderr.write('trireme: ' + (e && e.message || e) + '\\n'); process.exit(1); })`;
const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
const B = 4096;
const OP_TIMEOUT = 1500;

const dir = mkdtempSync(join(tmpdir(), 'trireme-engine-'));
const ports: number[] = [];
const procs: Array<ChildProcess | undefined> = [];
const logLines: string[] = [];
let engine: VolumeEngine;

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => res(port));
    });
  });
}

function startReplica(i: number): Promise<void> {
  const child = spawn(process.execPath, ['-e', LAUNCH, 'trireme', 'replica', '--dir', join(dir, `r${i}`), '--size', String(SIZE), '--volume-id', 'net', '--listen', `127.0.0.1:${ports[i]}`], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_LOG_LEVEL: 'warn' } });
  procs[i] = child;
  let out = '';
  let err = '';
  child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  return new Promise((res, rej) => {
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      if (out.includes('"event":"ready"')) res();
    });
    child.once('exit', (code) => rej(new Error(`replica ${i} exited (${code}) before ready: ${err}`)));
  });
}

function kill(i: number, signal: NodeJS.Signals): Promise<void> {
  const child = procs[i];
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  if (signal !== 'SIGKILL' && signal !== 'SIGTERM') {
    child.kill(signal);
    return Promise.resolve();
  }
  return new Promise((res) => {
    child.once('exit', () => res());
    child.kill(signal);
  });
}

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(engine.status())}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const block = (tag: number): Buffer => Buffer.alloc(B, tag);

/** The whole volume as one replica holds it, read over its own data connection. */
async function replicaImage(i: number): Promise<Buffer> {
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: ports[i], volumeId: 'net' });
  try {
    const parts: Buffer[] = [];
    for (let off = 0; off < SIZE; off += 4 * MiB) parts.push(await client.read(engine.status().epoch, off, 4 * MiB));
    return Buffer.concat(parts);
  } finally {
    client.close();
  }
}

function openEngine(): Promise<VolumeEngine> {
  const sink = new PassThrough();
  sink.on('data', (c: Buffer) => logLines.push(...c.toString().split('\n').filter(Boolean)));
  const logger = createRootLogger({ level: 'info', destination: sink });
  const links = ports.map((port) => new NetworkReplicaLink({ address: `127.0.0.1:${port}`, logger, timeoutMs: OP_TIMEOUT, volumeId: 'net' }));
  return VolumeEngine.open({ volumeId: 'net', links, logger, registry: new Registry(), tuning: { opTimeoutMs: OP_TIMEOUT, probeIntervalMs: 200, openTimeoutMs: 20_000 } });
}

before(async () => {
  for (let i = 0; i < 3; i++) ports.push(await freePort());
  await Promise.all([0, 1, 2].map(startReplica));
  engine = await openEngine();
});

after(async () => {
  await engine?.close();
  await Promise.all(procs.map((_, i) => kill(i, 'SIGKILL')));
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
    if (i === 50) await kill(2, 'SIGKILL');
  }
  await Promise.all(writes);
  assert.equal(engine.status().replicas[2].mode, 'ERR');
  for (let i = 0; i < 50; i++) await engine.write((300 + i) * B, block(7));
  await startReplica(2);
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
  await Promise.all([kill(1, 'SIGKILL'), kill(2, 'SIGKILL')]);
  await assert.rejects(engine.write(401 * B, block(41)), (err: unknown) => err instanceof BlockDeviceError && err.kind === 'unavailable');
  assert.equal(engine.status().state, 'offline');
  assert.deepEqual(await engine.read(400 * B, B), block(40));
  await Promise.all([startReplica(1), startReplica(2)]);
  await until('both replicas back', () => engine.status().state === 'healthy');
  await engine.write(401 * B, block(42));
  assert.deepEqual(await engine.read(400 * B, 2 * B), Buffer.concat([block(40), block(42)]));
});

test('a SIGSTOPped replica is dropped within the op timeout and rejoins after SIGCONT', async () => {
  await kill(0, 'SIGSTOP');
  const started = Date.now();
  await engine.write(500 * B, block(50));
  const waited = Date.now() - started;
  assert.ok(waited < OP_TIMEOUT + 1000, `write waited ${waited} ms`);
  assert.equal(engine.status().replicas[0].mode, 'ERR');
  await kill(0, 'SIGCONT');
  await until('the stopped replica back', () => engine.status().state === 'healthy');
  const images = await Promise.all([0, 1, 2].map(replicaImage));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
});

test('an unacknowledged write left on one replica is cut off when a newer controller took over without it', async () => {
  const first = engine;
  await first.write(600 * B, block(59));
  // r1 and r2 stop: the next write reaches r0 alone and fails after the op timeout.
  await Promise.all([kill(1, 'SIGSTOP'), kill(2, 'SIGSTOP')]);
  await assert.rejects(first.write(600 * B, block(60)), (err: unknown) => err instanceof BlockDeviceError && err.kind === 'unavailable');
  assert.deepEqual((await replicaImage(0)).subarray(600 * B, 601 * B), block(60), 'the failed write landed on r0');
  // They die without ever reading it; r0 goes away before a new controller starts.
  await Promise.all([kill(1, 'SIGKILL'), kill(2, 'SIGKILL')]);
  await first.close();
  await kill(0, 'SIGKILL');
  await Promise.all([startReplica(1), startReplica(2)]);
  engine = await openEngine();
  assert.equal(engine.status().epoch, first.status().epoch + 1);
  await engine.write(601 * B, block(61));
  assert.deepEqual(await engine.read(600 * B, B), block(59), 'the new history never had the failed write');
  // r0 returns with its tail from the older epoch: it is truncated, then caught up.
  const seen = logLines.length;
  await startReplica(0);
  await until('r0 back in RW', () => engine.status().state === 'healthy');
  const rebuild = logLines.slice(seen).find((l) => l.includes('"rebuild started"') && l.includes(`127.0.0.1:${ports[0]}`));
  assert.match(rebuild ?? '', /"kind":"delta"/, 'cut back to the divergence point, then a delta, not a full copy');
  const images = await Promise.all([0, 1, 2].map(replicaImage));
  assert.deepEqual(images[0].subarray(600 * B, 602 * B), Buffer.concat([block(59), block(61)]));
  assert.ok(images[0].equals(images[1]) && images[0].equals(images[2]), 'all three replicas hold the same image');
});
