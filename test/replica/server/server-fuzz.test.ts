import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { encodeFrame } from '../../../src/replica/wire/frame-codec';
import { FLAG_FUA, FLAG_RESPONSE, Opcode } from '../../../src/replica/wire/protocol';
import { MEMORY, blockPayload, identifyBlock, startHarness } from '../support/replica-harness';

/** mulberry32: a failing run repeats from its seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Frames a confused or hostile peer might send: valid ones with wild fields, responses, flipped bits, noise. */
function hostileBytes(r: () => number): Buffer {
  const ops = [Opcode.Hello, Opcode.Ping, Opcode.Write, Opcode.Read, Opcode.Unmap, Opcode.Flush];
  const frames: Buffer[] = [];
  for (let i = 0; i < 1 + Math.floor(r() * 5); i++) {
    const payload = Buffer.alloc(r() < 0.5 ? 0 : 4096 * (1 + Math.floor(r() * 3)), Math.floor(r() * 256));
    frames.push(
      encodeFrame(
        {
          opcode: ops[Math.floor(r() * ops.length)],
          flags: (r() < 0.2 ? FLAG_RESPONSE : 0) | (r() < 0.3 ? FLAG_FUA : 0),
          requestId: Math.floor(r() * 2 ** 32),
          epoch: Math.floor(r() * 3),
          seq: Math.floor(r() * 2 ** 40),
          offset: Math.floor(r() * 64) * (r() < 0.8 ? 4096 : 1000),
          length: r() < 0.8 ? payload.length : Math.floor(r() * 2 ** 32),
        },
        payload,
      ),
    );
  }
  const bytes = Buffer.concat(frames);
  const mode = r();
  if (mode < 0.4) for (let i = 0; i < 3; i++) bytes[Math.floor(r() * bytes.length)] ^= 1 << Math.floor(r() * 8);
  else if (mode < 0.5) for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
  if (bytes[0] === 0x50) bytes[0] = 0x51; // keep it on the data path, not the gRPC hand-over
  return bytes;
}

test('hostile connections are closed one by one while a good client keeps its data and service', { timeout: 60_000 }, async () => {
  const h = await startHarness(MEMORY, { size: 1024 * 1024 });
  const good = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
  try {
    // Hostile frames carry epochs 0-2: fenced off, so none of their writes can land.
    await h.store.setEpoch(5);
    await good.write(5, 1, 0, blockPayload(0, 1));
    const r = rng(7);
    let closedByServer = 0;
    for (let round = 0; round < 60; round++) {
      const sockets = Array.from({ length: 5 }, () => connect({ host: '127.0.0.1', port: h.server.dataPort }));
      const outcomes = sockets.map(
        (s) =>
          new Promise<boolean>((resolve) => {
            let endedByUs = false;
            s.on('error', () => undefined);
            s.on('data', () => undefined);
            s.once('connect', () => {
              const bytes = hostileBytes(r);
              const cut = Math.floor(r() * bytes.length);
              s.write(bytes.subarray(0, cut));
              setTimeout(() => s.write(bytes.subarray(cut)), 1);
              setTimeout(() => {
                endedByUs = true;
                s.destroy();
              }, 50);
            });
            s.once('close', () => resolve(!endedByUs));
          }),
      );
      closedByServer += (await Promise.all(outcomes)).filter(Boolean).length;
      // The good client is served between every wave.
      await good.write(5, 10 + round, 4096, blockPayload(1, round));
    }
    await sleep(50);
    const faults = h.lines.filter((l) => l.msg === 'protocol fault, closing data connection').length;
    assert.ok(closedByServer > 50, `server closed ${closedByServer} hostile connections`);
    assert.ok(faults >= closedByServer, `each one logged (${faults} lines for ${closedByServer})`);
    assert.equal(h.server.dataServer.connectionCount, 1, 'only the good connection remains');
    assert.deepEqual(identifyBlock(await good.read(5, 0, 4096)), { block: 0, version: 1 });
    assert.deepEqual(identifyBlock(await good.read(5, 4096, 4096)), { block: 1, version: 59 });
    assert.ok(!good.closed);
    const again = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
    again.close();
  } finally {
    good.close();
    await h.close();
  }
});
