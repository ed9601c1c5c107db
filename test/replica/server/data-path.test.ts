import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../../src/replica/client/control-client';
import { encodeFrame, encodeHeader } from '../../../src/replica/wire/frame-codec';
import { FrameDecoder } from '../../../src/replica/wire/frame-decoder';
import { Opcode, Status, type Frame } from '../../../src/replica/wire/protocol';
import { DISK, MEMORY, blockPayload, identifyBlock, startHarness, type Harness } from '../support/replica-harness';

const VOLUME = 'vol-data-path';

/** A raw socket speaking frames, for requests a well-behaved client would never send. */
async function rawConnection(port: number): Promise<{ socket: Socket; frames: Frame[]; next(): Promise<Frame>; closed: Promise<void> }> {
  const socket = connect({ host: '127.0.0.1', port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const frames: Frame[] = [];
  const decoder = new FrameDecoder(1 << 24);
  socket.on('data', (chunk: Buffer) => decoder.push(chunk, (f) => frames.push(f)));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  const next = async (): Promise<Frame> => {
    for (let i = 0; i < 200 && frames.length === 0; i++) await sleep(10);
    const f = frames.shift();
    assert.ok(f, 'a reply arrived');
    return f;
  };
  return { socket, frames, next, closed };
}

for (const kind of [MEMORY, DISK]) {
  describe(`data path over TCP (${kind.name})`, { timeout: 60_000 }, () => {
    let h: Harness;
    let client: ReplicaClient;

    before(async () => {
      h = await startHarness(kind, { volumeId: VOLUME });
      client = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort, volumeId: VOLUME });
    });
    after(async () => {
      client.close();
      await h.close();
    });

    test('hello reports identity, size and seqs', () => {
      assert.equal(client.hello.volumeId, VOLUME);
      assert.equal(client.hello.size, 16 * 1024 * 1024);
      assert.equal(client.hello.state, 'ok');
      assert.equal(typeof client.hello.replicaId, 'string');
    });

    test('write, read, unmap, flush and ping', { timeout: 60_000 }, async () => {
      assert.ok((await client.read(0, 0, 8192)).equals(Buffer.alloc(8192)), 'unwritten blocks read as zeros');
      await client.write(0, 1, 4096, blockPayload(1, 1));
      await client.write(0, 2, 8192, blockPayload(2, 1, 2), { fua: true });
      assert.ok((await client.read(0, 4096, 12288)).equals(Buffer.concat([blockPayload(1, 1), blockPayload(2, 1, 2)])));
      await client.unmap(0, 3, 8192, 4096);
      assert.equal(identifyBlock(await client.read(0, 8192, 4096)), 'zero');
      assert.deepEqual(identifyBlock(await client.read(0, 12288, 4096)), { block: 3, version: 1 });
      await client.flush(0);
      const ping = await client.ping();
      assert.equal(ping.lastSeq, 3);
      assert.equal(ping.durableSeq, 3, 'flushed');
    });

    test('many pipelined requests complete, each with its own reply', { timeout: 60_000 }, async () => {
      const base = 1000;
      let maxPending = 0;
      const writes = Array.from({ length: 600 }, (_, i) => {
        const p = client.write(0, base + i, (i % 200) * 4096, blockPayload(i % 200, i));
        maxPending = Math.max(maxPending, client.pendingCount);
        return p;
      });
      await Promise.all(writes);
      assert.ok(maxPending > 100, `requests were pipelined (max ${maxPending} pending)`);
      const reads = await Promise.all(Array.from({ length: 200 }, (_, b) => client.read(0, b * 4096, 4096)));
      // Per block the highest seq wins: the last of the three versions written.
      reads.forEach((r, b) => assert.deepEqual(identifyBlock(r), { block: b, version: b + 400 }));
    });

    test('pipelined 1 MiB writes and reads keep every byte, round after round', { timeout: 60_000 }, async () => {
      // Large payloads are assembled in reused buffers on the replica and read
      // straight into their own buffers on the client: reuse must never let one
      // request's bytes leak into another's.
      const MIB = 1024 * 1024;
      const fill = (round: number, slot: number): Buffer => {
        const b = Buffer.allocUnsafe(MIB + 4096 * slot);
        const words = new Uint32Array(b.buffer, b.byteOffset, b.length / 4);
        for (let i = 0; i < words.length; i++) words[i] = (round * 0x9e3779b1 + slot * 0x85ebca6b + i) >>> 0;
        return b;
      };
      for (let round = 0; round < 3; round++) {
        const datas = Array.from({ length: 6 }, (_, slot) => fill(round, slot));
        await Promise.all(datas.map((d, slot) => client.write(0, 3000 + round * 10 + slot, slot * 2 * MIB, d)));
        const back = await Promise.all(datas.map((d, slot) => client.read(0, slot * 2 * MIB, d.length)));
        back.forEach((b, slot) => assert.ok(b.equals(datas[slot]), `round ${round} slot ${slot} reads back what was written`));
      }
    });

    test('bad requests get a status and the connection keeps serving', { timeout: 60_000 }, async () => {
      await assert.rejects(client.write(0, 5000, 16 * 1024 * 1024, blockPayload(0, 1)), { code: 'ERR_OUT_OF_RANGE' });
      await assert.rejects(client.read(0, 100, 4096), { code: 'ERR_MISALIGNED' });
      await assert.rejects(client.read(0, 0, 4096, 'no-such-snapshot'), { code: 'ERR_NOT_FOUND' });
      await assert.rejects(client.read(0, 0, 64 * 1024 * 1024), { code: 'ERR_BAD_REQUEST' }, 'refused before sending');
      await assert.rejects(client.write(0, 5001, 0, Buffer.alloc(16 * 1024 * 1024)), { code: 'ERR_BAD_REQUEST' });
      assert.ok((await client.ping()).lastSeq > 0);
    });

    test('a wrong volume id is refused at hello', { timeout: 60_000 }, async () => {
      await assert.rejects(ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort, volumeId: 'another-volume' }), { code: 'ERR_VOLUME_MISMATCH' });
    });

    test('requests before hello are refused with NotReady; a bad payload CRC gets ChecksumMismatch and writes nothing', { timeout: 60_000 }, async () => {
      const raw = await rawConnection(h.server.dataPort);
      raw.socket.write(encodeFrame({ opcode: Opcode.Read, requestId: 7, offset: 0, length: 4096 }));
      assert.equal((await raw.next()).status, Status.NotReady);
      raw.socket.write(encodeFrame({ opcode: Opcode.Hello, requestId: 8 }, Buffer.from(VOLUME)));
      assert.equal((await raw.next()).status, Status.Ok);
      const data = blockPayload(2000, 1);
      const header = encodeHeader({ opcode: Opcode.Write, requestId: 9, seq: 9000, offset: 2000 * 4096, length: 4096 }, data);
      data[100] ^= 0xff; // corrupted after the CRC was computed: in flight
      raw.socket.write(Buffer.concat([header, data]));
      const reply = await raw.next();
      assert.equal(reply.requestId, 9);
      assert.equal(reply.status, Status.ChecksumMismatch);
      assert.equal(identifyBlock(await client.read(0, 2000 * 4096, 4096)), 'zero');
      raw.socket.write(encodeFrame({ opcode: Opcode.Read, requestId: 11, offset: 0, length: 64 * 1024 * 1024 }));
      assert.equal((await raw.next()).status, Status.BadRequest, 'a read beyond the frame limit is refused, not allocated');
      raw.socket.write(encodeFrame({ opcode: Opcode.Ping, requestId: 10 }));
      assert.equal((await raw.next()).status, Status.Ok, 'the connection still serves');
      raw.socket.destroy();
    });

    test('garbage closes only the connection that sent it, with one log line', { timeout: 60_000 }, async () => {
      for (let i = 0; i < 5; i++) {
        const raw = await rawConnection(h.server.dataPort);
        const junk = Buffer.alloc(200 + i * 37);
        for (let j = 0; j < junk.length; j++) junk[j] = (j * 7919 + i) & 0xff;
        junk[0] = 0x54; // not the HTTP/2 preface: the data path parses it
        raw.socket.write(junk);
        await raw.closed;
      }
      const faults = h.lines.filter((l) => l.msg === 'protocol fault, closing data connection');
      assert.ok(faults.length >= 5, `one log line per bad connection (${faults.length})`);
      assert.match(String(faults[0].code), /^ERR_WIRE_/);
      await client.write(0, 6000, 0, blockPayload(0, 6000));
      assert.deepEqual(identifyBlock(await client.read(0, 0, 4096)), { block: 0, version: 6000 });
    });

    test('older epochs are refused once the replica has promised a newer one (fencing)', { timeout: 60_000 }, async () => {
      const control = new ReplicaControlClient(`127.0.0.1:${h.server.dataPort}`);
      try {
        await control.setEpoch(5);
        const err = await client.write(4, 7000, 0, blockPayload(0, 7000)).then(
          () => assert.fail('stale write accepted'),
          (e: unknown) => e as { code: string; replicaEpoch?: number },
        );
        assert.equal(err.code, 'ERR_STALE_EPOCH');
        assert.equal(err.replicaEpoch, 5, 'the reply names the epoch that fenced it');
        await assert.rejects(client.read(4, 0, 4096), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(client.unmap(4, 7001, 0, 4096), { code: 'ERR_STALE_EPOCH' });
        await assert.rejects(client.flush(4), { code: 'ERR_STALE_EPOCH' });
        assert.deepEqual(identifyBlock(await client.read(5, 0, 4096)), { block: 0, version: 6000 }, 'nothing from the old epoch landed');
        await client.write(5, 7002, 0, blockPayload(0, 7002));
        assert.deepEqual(identifyBlock(await client.read(5, 0, 4096)), { block: 0, version: 7002 });
        assert.equal((await client.ping()).epoch, 5);
      } finally {
        control.close();
      }
    });
  });
}

describe('server backpressure', { timeout: 60_000 }, () => {
  test('reading pauses while in-flight requests are over budget', { timeout: 60_000 }, async () => {
    const h = await startHarness(MEMORY, { data: { maxInflightRequests: 4 } });
    const store = h.store;
    const realWrite = store.write.bind(store);
    let started = 0;
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => (release = resolve));
    store.write = async (...args) => {
      started++;
      await gate;
      return realWrite(...args);
    };
    const client = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
    try {
      const writes = Array.from({ length: 200 }, (_, i) => client.write(0, i + 1, (i % 64) * 4096, blockPayload(i % 64, i)));
      await sleep(300);
      // At most one socket read beyond the budget is parsed before the pause takes effect.
      assert.ok(started >= 4 && started < 4 + 20, `store saw ${started} writes while gated`);
      release();
      await Promise.all(writes);
      assert.equal(started, 200);
    } finally {
      client.close();
      await h.close();
    }
  });
});
