import assert from 'node:assert/strict';
import { test } from 'node:test';
import { errorCode } from '../../../src/common/errors';
import { encodeFrame } from '../../../src/replica/wire/frame-codec';
import { FrameDecoder } from '../../../src/replica/wire/frame-decoder';
import { FLAG_RESPONSE, Opcode, Status, type Frame } from '../../../src/replica/wire/protocol';

const MAX = 64 * 1024;

/** Deterministic PRNG (mulberry32) so a failure reproduces from the printed seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomFrame(r: () => number): Buffer {
  const ops = [Opcode.Hello, Opcode.Ping, Opcode.Write, Opcode.Read, Opcode.Unmap, Opcode.Flush];
  const payload = Buffer.alloc(Math.floor(r() * 3) === 0 ? 0 : Math.floor(r() * 9000));
  for (let i = 0; i < payload.length; i++) payload[i] = Math.floor(r() * 256);
  const response = r() < 0.5;
  return encodeFrame(
    {
      opcode: ops[Math.floor(r() * ops.length)],
      flags: response ? FLAG_RESPONSE : 0,
      status: response ? Status.NotFound : Status.Ok,
      requestId: Math.floor(r() * 2 ** 32),
      epoch: Math.floor(r() * 1000),
      seq: Math.floor(r() * 2 ** 50),
      offset: Math.floor(r() * 2 ** 40),
      length: Math.floor(r() * 2 ** 20),
    },
    payload,
  );
}

/** Feeds `bytes` split at random points; returns the frames and the error that stopped decoding. */
function feed(bytes: Buffer, r: () => number): { frames: Frame[]; error?: unknown } {
  const decoder = new FrameDecoder(MAX);
  const frames: Frame[] = [];
  let at = 0;
  try {
    while (at < bytes.length) {
      const n = 1 + Math.floor(r() * 300);
      decoder.push(bytes.subarray(at, at + n), (f) => frames.push(f));
      at += n;
    }
  } catch (error) {
    return { frames, error };
  }
  return { frames };
}

test('random valid frames split at random points all decode', () => {
  const r = rng(1);
  for (let round = 0; round < 200; round++) {
    const count = 1 + Math.floor(r() * 6);
    const frames = Array.from({ length: count }, () => randomFrame(r));
    const result = feed(Buffer.concat(frames), r);
    assert.equal(result.error, undefined, `round ${round}`);
    assert.equal(result.frames.length, count);
  }
});

test('random bytes and mutated frames fail with a wire error code, never anything else', () => {
  const r = rng(2);
  let rejected = 0;
  for (let round = 0; round < 2000; round++) {
    let bytes: Buffer;
    if (round % 2 === 0) {
      bytes = Buffer.alloc(1 + Math.floor(r() * 2000));
      for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(r() * 256);
    } else {
      bytes = Buffer.concat([randomFrame(r), randomFrame(r)]);
      const flips = 1 + Math.floor(r() * 4);
      for (let i = 0; i < flips; i++) bytes[Math.floor(r() * Math.min(bytes.length, 120))] ^= 1 << Math.floor(r() * 8);
    }
    const { frames, error } = feed(bytes, r);
    for (const f of frames) assert.ok(f.payload.length <= MAX, 'no frame beyond the limit');
    if (error !== undefined) {
      rejected++;
      assert.match(errorCode(error) ?? String(error), /^ERR_WIRE_/, `round ${round}`);
    }
  }
  assert.ok(rejected > 1000, `most garbage is rejected (${rejected})`);
});
