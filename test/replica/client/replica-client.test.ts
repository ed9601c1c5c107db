import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { encodeFrame } from '../../../src/replica/wire/frame-codec';
import { FrameDecoder } from '../../../src/replica/wire/frame-decoder';
import { FLAG_RESPONSE, Opcode, Status, type Frame } from '../../../src/replica/wire/protocol';

/**
 * A scripted peer: a real TCP server whose replies the test decides, to drive
 * the client into timeouts, disconnects and backpressure that a healthy
 * replica would not produce on demand.
 */
async function scriptedPeer(onFrame: (frame: Frame, socket: Socket) => void): Promise<{ server: Server; port: number; sockets: Socket[] }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => undefined);
    const decoder = new FrameDecoder(1 << 24);
    socket.on('data', (chunk: Buffer) => decoder.push(chunk, (f) => onFrame(f, socket)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push({ server, sockets });
  return { server, port: (server.address() as AddressInfo).port, sockets };
}

const servers: Array<{ server: Server; sockets: Socket[] }> = [];
after(async () => {
  for (const { server, sockets } of servers) {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
});

function reply(socket: Socket, frame: Frame, status: number = Status.Ok, payload?: Buffer): void {
  socket.write(encodeFrame({ opcode: frame.opcode, flags: FLAG_RESPONSE, status: status as 0, requestId: frame.requestId, epoch: frame.epoch, seq: frame.seq, offset: frame.offset, length: frame.length }, payload));
}

const HELLO = Buffer.from(JSON.stringify({ replicaId: 'r1', volumeId: 'v', size: 1 << 20, epoch: 1, lastSeq: 0, durableSeq: 0, state: 'ok', maxPayload: 1 << 20 }));

function answerHello(frame: Frame, socket: Socket): boolean {
  if (frame.opcode !== Opcode.Hello) return false;
  reply(socket, frame, Status.Ok, HELLO);
  return true;
}

test('a replica that stops answering fails every pending request with ERR_REPLICA_TIMEOUT', async () => {
  const peer = await scriptedPeer((f, s) => answerHello(f, s));
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port, requestTimeoutMs: 300, keepAliveMs: 10_000 });
  const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
  const started = Date.now();
  const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => client.write(1, i + 1, 0, Buffer.alloc(4096))));
  const elapsed = Date.now() - started;
  for (const r of results) assert.equal(r.status === 'rejected' && (r.reason as { code: string }).code, 'ERR_REPLICA_TIMEOUT');
  assert.ok(elapsed >= 290 && elapsed < 1500, `timed out after ${elapsed} ms`);
  assert.equal((await closed as { code: string }).code, 'ERR_REPLICA_TIMEOUT');
  assert.ok(client.closed);
  await assert.rejects(client.ping(), { code: 'ERR_REPLICA_TIMEOUT' }, 'later requests fail at once with the same code');
});

test('a disconnect fails every pending request with ERR_REPLICA_DISCONNECTED and emits error and close', async () => {
  let seen = 0;
  const peer = await scriptedPeer((f, s) => {
    if (answerHello(f, s)) return;
    if (++seen === 5) s.destroy();
  });
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port });
  const errors: unknown[] = [];
  client.on('error', (e) => errors.push(e));
  const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => client.unmap(1, i + 1, 0, 4096)));
  for (const r of results) assert.equal(r.status === 'rejected' && (r.reason as { code: string }).code, 'ERR_REPLICA_DISCONNECTED');
  assert.equal(errors.length, 1);
});

test('an idle connection sends keep-alive pings, and a silent peer is detected by them', async () => {
  let pings = 0;
  let answerPings = true;
  const peer = await scriptedPeer((f, s) => {
    if (answerHello(f, s)) return;
    if (f.opcode === Opcode.Ping) {
      pings++;
      if (answerPings) reply(s, f);
    }
  });
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port, keepAliveMs: 50, requestTimeoutMs: 200 });
  const closed = new Promise<unknown>((resolve) => client.once('close', resolve));
  await sleep(400);
  assert.ok(pings >= 3, `pings while idle: ${pings}`);
  assert.ok(!client.closed);
  answerPings = false;
  assert.equal((await closed as { code: string }).code, 'ERR_REPLICA_TIMEOUT');
});

test('replies that do not match a pending request are a protocol fault', async () => {
  const peer = await scriptedPeer((f, s) => {
    if (answerHello(f, s)) return;
    reply(s, { ...f, requestId: f.requestId + 1000 });
  });
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port });
  await assert.rejects(client.flush(1), { code: 'ERR_REPLICA_PROTOCOL' });
  assert.ok(client.closed);
});

test('a read reply whose payload fails its CRC is refused', async () => {
  const peer = await scriptedPeer((f, s) => {
    if (answerHello(f, s)) return;
    const data = Buffer.alloc(f.length, 7);
    const bytes = encodeFrame({ opcode: f.opcode, flags: FLAG_RESPONSE, requestId: f.requestId, length: f.length }, data);
    bytes[bytes.length - 1] ^= 1;
    s.write(bytes);
  });
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port });
  await assert.rejects(client.read(1, 0, 4096), { code: 'ERR_CHECKSUM_MISMATCH' });
});

test('a peer that accepts but never answers the hello fails the connect with ERR_REPLICA_CONNECT_TIMEOUT', async () => {
  const peer = await scriptedPeer(() => undefined);
  const started = Date.now();
  await assert.rejects(ReplicaClient.connect({ host: '127.0.0.1', port: peer.port, connectTimeoutMs: 200, requestTimeoutMs: 10_000 }), { code: 'ERR_REPLICA_CONNECT_TIMEOUT' });
  assert.ok(Date.now() - started < 2000);
});

test('connecting to a closed port fails with ERR_REPLICA_CONNECT', async () => {
  const peer = await scriptedPeer(() => undefined);
  await new Promise<void>((resolve) => peer.server.close(() => resolve()));
  await assert.rejects(ReplicaClient.connect({ host: '127.0.0.1', port: peer.port }), { code: 'ERR_REPLICA_CONNECT' });
});

test('writes wait for drain while the peer does not read, then all complete in order', async () => {
  let paused: Socket | undefined;
  const order: number[] = [];
  const peer = await scriptedPeer((f, s) => {
    if (answerHello(f, s)) {
      s.pause();
      paused = s;
      return;
    }
    order.push(f.seq);
    reply(s, f);
  });
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: peer.port, requestTimeoutMs: 10_000 });
  const socket = (client as unknown as { socket: Socket }).socket;
  const data = Buffer.alloc(256 * 1024, 1);
  const writes = Array.from({ length: 64 }, (_, i) => client.write(1, i + 1, 0, data));
  await sleep(200);
  // 16 MiB issued; the kernel buffers take some, the client holds at most one frame beyond its high-water mark.
  assert.ok(socket.writableLength <= socket.writableHighWaterMark + data.length + 64, `client buffered ${socket.writableLength} bytes`);
  paused?.resume();
  await Promise.all(writes);
  assert.deepEqual(order, Array.from({ length: 64 }, (_, i) => i + 1), 'sent in issue order');
});
