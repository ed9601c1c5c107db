import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from '../support/host-tools';
import { RawInitiator, buildPdu, dataOut, loginRequest, read10, scsiCommand, write10 } from './support/raw-initiator';
import { startTarget, type RunningTarget } from './support/target';

const run = promisify(execFile);
const MiB = 1024 * 1024;

let target: RunningTarget;

before(async () => {
  // A small in-flight budget and short stall timeout make the flow-control paths reachable in seconds.
  target = await startTarget({ size: 32 * MiB, connection: { inflightBudget: 2 * MiB, writeBudget: 4 * MiB, nopTimeoutMs: 1500, nopIntervalMs: 5000, loginTimeoutMs: 2000 } });
});

after(async () => {
  await target.close();
});

async function gauge(name: string): Promise<number> {
  const metric = await target.registry.getSingleMetric(name)?.get();
  return (metric?.values ?? []).reduce((sum, v) => sum + v.value, 0);
}

async function counter(name: string, direction: string): Promise<number> {
  const metric = await target.registry.getSingleMetric(name)?.get();
  return metric?.values.find((v) => v.labels.direction === direction)?.value ?? 0;
}

async function settle(name: string, value: number, timeoutMs = 5000): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let current = await gauge(name);
  while (current !== value && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    current = await gauge(name);
  }
  return current;
}

/** A real client still gets through: the process kept serving everyone else. */
async function realClientWorks(): Promise<void> {
  const { stdout } = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x6e 1M 64k', '-c', 'read -P 0x6e 1M 64k', target.url()], { timeout: 30_000 });
  assert.doesNotMatch(stdout, /Pattern verification failed/);
  assert.match(stdout, /read 65536\/65536/);
}

/** The PDUs of a valid session: login, a write with immediate data, a read, a NOP, a text request, a logout. */
function recordedSession(iqn: string): Buffer[] {
  return [
    loginRequest({ csg: 1, nsg: 3, transit: true, pairs: [['InitiatorName', 'iqn.2026-11.io.trireme:fuzz'], ['TargetName', iqn], ['ImmediateData', 'Yes'], ['InitialR2T', 'No']] }),
    buildPdu(scsiCommand({ itt: 1, cmdSN: 1, cdb: write10(0, 8), write: true, edtl: 4096, data: Buffer.alloc(4096, 0x33) })),
    buildPdu(scsiCommand({ itt: 2, cmdSN: 2, cdb: read10(0, 8), read: true, edtl: 4096 })),
    buildPdu({ opcode: 0x00, immediate: true, itt: 3, data: Buffer.from('hello'), fill: (b) => b.writeUInt32BE(0xffffffff, 20) }),
    buildPdu({ opcode: 0x04, immediate: true, itt: 4, data: Buffer.from('SendTargets=All\0'), fill: (b) => b.writeUInt32BE(0xffffffff, 20) }),
    buildPdu(dataOut({ itt: 1, ttt: 0xffffffff, dataSN: 0, offset: 0, data: Buffer.alloc(512), final: true })),
    buildPdu({ opcode: 0x06, itt: 5, fill: (b) => b.writeUInt32BE(3, 24) }),
  ];
}

/** Deterministic pseudo-random numbers so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

function mutate(pdus: Buffer[], random: () => number): Buffer {
  const pick = Math.floor(random() * 6);
  if (pick === 5) {
    // Bit flips inside the login request itself.
    const login = Buffer.from(pdus[0]);
    for (let i = 0; i < 1 + Math.floor(random() * 4); i++) login[Math.floor(random() * login.length)] ^= 1 << Math.floor(random() * 8);
    return Buffer.concat([login, ...pdus.slice(1)]);
  }
  const index = 1 + Math.floor(random() * (pdus.length - 1));
  const stream = Buffer.concat([pdus[0], ...pdus.slice(1, index + 1)]);
  const at = pdus[0].length + Math.floor(random() * (stream.length - pdus[0].length));
  switch (pick) {
    case 0: // bit flips after the login
      for (let i = 0; i < 1 + Math.floor(random() * 8); i++) stream[Math.min(stream.length - 1, at + Math.floor(random() * 64))] ^= 1 << Math.floor(random() * 8);
      return stream;
    case 1: // blow up DataSegmentLength or TotalAHSLength of the PDU after the login
      stream.writeUIntBE(Math.floor(random() * 0xffffff), pdus[0].length + 5, 3);
      stream[pdus[0].length + 4] = Math.floor(random() * 256);
      return stream;
    case 2: // truncation
      return stream.subarray(0, at);
    case 3: // random bytes after the login
      return Buffer.concat([pdus[0], randomBytes(1 + Math.floor(random() * 4096))]);
    default: // random bytes from the start
      return randomBytes(1 + Math.floor(random() * 512));
  }
}

async function sendSplit(bytes: Buffer, random: () => number): Promise<void> {
  const c = await RawInitiator.connect(target.port);
  let at = 0;
  while (at < bytes.length) {
    const n = 1 + Math.floor(random() * 700);
    c.write(bytes.subarray(at, at + n));
    at += n;
    if (random() < 0.2) await new Promise((r) => setImmediate(r));
  }
  // Drain whatever comes back for a moment, then leave: some cases are answered, some are closed on us.
  await c.next(30);
  c.close();
}

test('random and mutated PDUs never crash the target or leak connections, sessions or memory', async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  const pdus = recordedSession(target.iqn);
  await realClientWorks();
  const rssBefore = process.memoryUsage().rss;
  for (let batch = 0; batch < 6; batch++) {
    const random = prng(0x5eed + batch);
    const cases = Array.from({ length: 50 }, () => mutate(pdus, random));
    for (let i = 0; i < cases.length; i += 10) await Promise.all(cases.slice(i, i + 10).map((bytes) => sendSplit(bytes, random)));
    await realClientWorks();
  }
  assert.equal(await settle('trireme_iscsi_connections', 0), 0);
  assert.equal(await settle('trireme_iscsi_sessions', 0), 0);
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 256 * MiB, `rss grew by ${grown} bytes`);
});

test('a peer that stops reading during a large read is dropped; others go on', async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  const c = await RawInitiator.connect(target.port);
  assert.equal((await c.login(target.iqn)).status, 0);
  c.socket.pause();
  const sentBefore = await counter('trireme_iscsi_transferred_bytes_total', 'out');
  // 64 reads of 1 MiB: far more than socket buffers and the 2 MiB budget hold.
  for (let i = 0; i < 64; i++) c.send(scsiCommand({ itt: 100 + i, cmdSN: c.cmdSN++, cdb: read10(i * 2048, 2048), read: true, edtl: MiB }));
  await realClientWorks();
  // A paused client socket does not notice the reset, so watch the target's side.
  assert.equal(await settle('trireme_iscsi_connections', 0, 10_000), 0, 'the stalled connection was dropped');
  assert.equal(await settle('trireme_iscsi_sessions', 0), 0);
  // Commands wait for queued output to drain: far less than the 64 MiB asked for was ever queued.
  const queued = (await counter('trireme_iscsi_transferred_bytes_total', 'out')) - sentBefore;
  assert.ok(queued < 24 * MiB, `queued ${queued} bytes for a peer that reads nothing`);
  c.close();
  await realClientWorks();
});

test('a peer that disconnects in the middle of Data-Out leaves nothing behind and writes nothing', async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  const before = await target.device.read(20 * MiB, MiB);
  const c = await RawInitiator.connect(target.port);
  assert.equal((await c.login(target.iqn, [['InitialR2T', 'Yes'], ['ImmediateData', 'No']])).status, 0);
  c.send(scsiCommand({ itt: 1, cmdSN: c.cmdSN++, cdb: write10((20 * MiB) / 512, 2048), write: true, edtl: MiB }));
  let r2t = await c.next();
  while (r2t && (r2t.bhs[0] & 0x3f) !== 0x31) r2t = await c.next();
  assert.ok(r2t, 'an R2T arrives');
  c.send(dataOut({ itt: 1, ttt: r2t.bhs.readUInt32BE(20), dataSN: 0, offset: 0, data: Buffer.alloc(65536, 0xee), final: false }));
  c.close();
  assert.equal(await settle('trireme_iscsi_connections', 0), 0);
  assert.equal(await settle('trireme_iscsi_sessions', 0), 0);
  assert.deepEqual(await target.device.read(20 * MiB, MiB), before);
  await realClientWorks();
});

test('a connection that never logs in is closed after the login timeout', async () => {
  const c = await RawInitiator.connect(target.port);
  c.write(Buffer.alloc(20));
  assert.equal(await c.waitClosed(5000), true);
});

test('writes are admitted within the write budget: later ones wait for R2Ts, huge ones claim no memory up front', async () => {
  const c = await RawInitiator.connect(target.port);
  assert.equal((await c.login(target.iqn, [['InitialR2T', 'Yes'], ['ImmediateData', 'No'], ['MaxBurstLength', '16777215']])).status, 0);
  const rssBefore = process.memoryUsage().rss;
  // 40 writes announcing 32 MiB each (1.25 GiB in all) and sending nothing.
  for (let i = 0; i < 40; i++) c.send(scsiCommand({ itt: 200 + i, cmdSN: c.cmdSN++, cdb: write10(0, 65535), write: true, edtl: 32 * MiB }));
  const first = await c.next();
  assert.equal(first?.bhs[0], 0x31, 'the first write is admitted although it exceeds the budget alone');
  assert.equal(first?.bhs.readUInt32BE(16), 200);
  assert.equal(await c.next(300), undefined, 'no other write gets an R2T while it holds the budget');
  const grown = process.memoryUsage().rss - rssBefore;
  assert.ok(grown < 200 * MiB, `rss grew by ${grown} bytes`);
  c.close();
  assert.equal(await settle('trireme_iscsi_sessions', 0), 0);
});
