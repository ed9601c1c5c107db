import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crc32c } from '@node-rs/crc32';
import { decodeHeader, encodeFrame, encodeHeader } from '../../../src/replica/wire/frame-codec';
import { FrameDecoder } from '../../../src/replica/wire/frame-decoder';
import { FLAG_FUA, FLAG_RESPONSE, HEADER_SIZE, Opcode, Status, type Frame } from '../../../src/replica/wire/protocol';

const MAX = 1 << 20;

function pattern(length: number, seed: number): Buffer {
  const b = Buffer.alloc(length);
  for (let i = 0; i < length; i++) b[i] = (i * 31 + seed) & 0xff;
  return b;
}

/** A stream of frames of every kind, with payloads of 0, 1, 4096 and 8192+3 bytes. */
function fixtures(): { bytes: Buffer; frames: Array<Omit<Frame, 'payloadCrc'>> } {
  const specs = [
    { opcode: Opcode.Hello, requestId: 1, payload: Buffer.from('vol-1') },
    { opcode: Opcode.Write, requestId: 2, epoch: 3, seq: 2 ** 40 + 7, offset: 8192, length: 4096, flags: FLAG_FUA, payload: pattern(4096, 1) },
    { opcode: Opcode.Read, requestId: 3, epoch: 3, offset: 2 ** 45, length: 8192, payload: Buffer.alloc(0) },
    { opcode: Opcode.Read, requestId: 3, epoch: 3, flags: FLAG_RESPONSE, status: Status.Ok, length: 8195, payload: pattern(8195, 9) },
    { opcode: Opcode.Unmap, requestId: 0xffffffff, epoch: Number.MAX_SAFE_INTEGER, seq: 5, offset: 0, length: 4096 * 1024, payload: Buffer.alloc(0) },
    { opcode: Opcode.Flush, requestId: 5, epoch: 3, flags: FLAG_RESPONSE, status: Status.StaleEpoch, payload: Buffer.from('x') },
    { opcode: Opcode.Ping, requestId: 6, payload: Buffer.alloc(0) },
  ] as const;
  const frames = specs.map((s) => ({
    opcode: s.opcode,
    flags: 'flags' in s ? s.flags : 0,
    status: 'status' in s ? s.status : Status.Ok,
    requestId: s.requestId,
    epoch: 'epoch' in s ? s.epoch : 0,
    seq: 'seq' in s ? s.seq : 0,
    offset: 'offset' in s ? s.offset : 0,
    length: 'length' in s ? s.length : 0,
    payloadLength: s.payload.length,
    payload: s.payload,
  }));
  return { bytes: Buffer.concat(frames.map((f) => encodeFrame(f, f.payload))), frames };
}

function decodeChunks(chunks: Buffer[]): Frame[] {
  const decoder = new FrameDecoder(MAX);
  const out: Frame[] = [];
  for (const c of chunks) decoder.push(c, (f) => out.push(f));
  assert.equal(decoder.bufferedBytes, 0, 'nothing left over after whole frames');
  return out;
}

function assertFrames(actual: Frame[], expected: Array<Omit<Frame, 'payloadCrc'>>): void {
  assert.equal(actual.length, expected.length);
  actual.forEach((f, i) => {
    const { payloadCrc, payload, ...fields } = f;
    const { payload: wantPayload, ...wantFields } = expected[i];
    assert.deepEqual(fields, wantFields, `frame ${i} fields`);
    assert.ok(payload.equals(wantPayload), `frame ${i} payload`);
    assert.equal(payloadCrc, wantPayload.length === 0 ? 0 : crc32c(wantPayload));
  });
}

test('a stream of frames decodes whole, split at every byte, and one byte at a time', () => {
  const { bytes, frames } = fixtures();
  assertFrames(decodeChunks([bytes]), frames);
  for (let cut = 1; cut < bytes.length; cut++) {
    assertFrames(decodeChunks([bytes.subarray(0, cut), bytes.subarray(cut)]), frames);
  }
  const single = Array.from({ length: bytes.length }, (_, i) => Buffer.from(bytes.subarray(i, i + 1)));
  assertFrames(decodeChunks(single), frames);
});

test('every frame split at every pair of cut points inside it decodes the same', () => {
  const { frames } = fixtures();
  for (const f of frames.filter((x) => x.payload.length <= 4096)) {
    const bytes = encodeFrame(f, f.payload);
    for (let a = 1; a < bytes.length; a += 7) {
      for (let b = a + 1; b < bytes.length; b += 13) {
        assertFrames(decodeChunks([bytes.subarray(0, a), bytes.subarray(a, b), bytes.subarray(b)]), [f]);
      }
    }
  }
});

test('a payload inside one chunk is a zero-copy slice; a split payload is assembled into its own buffer', () => {
  const payload = pattern(4096, 3);
  const bytes = encodeFrame({ opcode: Opcode.Write, requestId: 1, epoch: 1, seq: 1, length: 4096 }, payload);
  const [whole] = decodeChunks([bytes]);
  assert.equal(whole.payload.buffer, bytes.buffer, 'slice of the received chunk');
  const [split] = decodeChunks([bytes.subarray(0, 100), bytes.subarray(100)]);
  assert.notEqual(split.payload.buffer, bytes.buffer);
  assert.ok(split.payload.equals(payload));
});

test('with reused input every payload is copied out; a large one can be read straight into its own buffer', () => {
  const small = pattern(4096, 5);
  const big = pattern(200_000, 7);
  const bytes = Buffer.concat([
    encodeFrame({ opcode: Opcode.Write, requestId: 1, epoch: 1, seq: 1, length: small.length }, small),
    encodeFrame({ opcode: Opcode.Write, requestId: 2, epoch: 1, seq: 2, length: big.length }, big),
    encodeFrame({ opcode: Opcode.Ping, requestId: 3 }),
  ]);
  const allocated: number[] = [];
  const decoder = new FrameDecoder(MAX, { reusedInput: true, allocate: (n) => (allocated.push(n), Buffer.allocUnsafe(n)) });
  const out: Frame[] = [];
  const scratch = Buffer.alloc(65536);
  let at = 0;
  // What a socket reader does: small reads into one scratch buffer, the rest of a large payload into the payload itself.
  while (at < bytes.length) {
    const direct = decoder.directTarget(scratch.length);
    if (direct) {
      const n = Math.min(direct.length, 70_000, bytes.length - at);
      bytes.copy(direct, 0, at, at + n);
      decoder.filledDirect(n, (f) => out.push(f));
      at += n;
      continue;
    }
    const n = Math.min(scratch.length, bytes.length - at);
    bytes.copy(scratch, 0, at, at + n);
    decoder.push(scratch.subarray(0, n), (f) => out.push(f));
    scratch.fill(0xee); // the reader reuses its buffer at once
    at += n;
  }
  assert.deepEqual(out.map((f) => f.requestId), [1, 2, 3]);
  assert.ok(out[0].payload.equals(small), 'a payload within one chunk was copied before the chunk was reused');
  assert.ok(out[1].payload.equals(big), 'a payload read partly into scratch, partly directly, is whole');
  assert.deepEqual(allocated, [big.length], 'only the spanning payload was allocated through the option');
  assert.equal(decoder.bufferedBytes, 0);
  assert.equal(decoder.directTarget(1), undefined, 'no payload in progress');
  assert.throws(() => decoder.filledDirect(1, () => undefined), RangeError);
});

test('an oversized payload is refused from its header alone, before any payload byte is buffered', () => {
  const header = encodeHeader({ opcode: Opcode.Write, requestId: 1, length: 4096 }, Buffer.alloc(MAX + 1));
  const decoder = new FrameDecoder(MAX);
  assert.throws(() => decoder.push(header, () => assert.fail('no frame')), { code: 'ERR_WIRE_FRAME_TOO_LARGE' });
});

test('header faults carry stable codes', () => {
  const good = encodeHeader({ opcode: Opcode.Ping, requestId: 9 });
  const cases: Array<[string, (b: Buffer) => void, string]> = [
    ['magic', (b) => b.writeUInt16BE(0x1234, 0), 'ERR_WIRE_BAD_MAGIC'],
    ['version', (b) => b.writeUInt8(2, 2), 'ERR_WIRE_BAD_VERSION'],
    ['a flipped bit', (b) => (b[20] ^= 0x10), 'ERR_WIRE_HEADER_CRC'],
  ];
  for (const [what, mutate, code] of cases) {
    const b = Buffer.from(good);
    mutate(b);
    assert.throws(() => decodeHeader(b, 0, MAX), { code }, what);
  }
  // Fields that pass the CRC but make no sense: re-sign the header after the change.
  const resigned = (mutate: (b: Buffer) => void): Buffer => {
    const b = Buffer.from(good);
    mutate(b);
    b.writeUInt32BE(crc32c(b.subarray(0, 48)), 48);
    return b;
  };
  assert.throws(() => decodeHeader(resigned((b) => b.writeUInt8(0x7f, 3)), 0, MAX), { code: 'ERR_WIRE_BAD_OPCODE' });
  assert.throws(() => decodeHeader(resigned((b) => b.writeUInt16BE(0x0100, 4)), 0, MAX), { code: 'ERR_WIRE_BAD_FLAGS' });
  assert.throws(() => decodeHeader(resigned((b) => b.writeUInt16BE(Status.Corrupt, 6)), 0, MAX), { code: 'ERR_WIRE_BAD_STATUS' }, 'status in a request');
  assert.throws(() => decodeHeader(resigned((b) => b.writeUInt32BE(0xffffffff, 12)), 0, MAX), { code: 'ERR_WIRE_BAD_FIELD' }, 'epoch beyond 2^53');
  assert.throws(() => decodeHeader(resigned((b) => b.writeUInt32BE(7, 44)), 0, MAX), { code: 'ERR_WIRE_BAD_FIELD' }, 'payload CRC without payload');
});

test('the encoder refuses values the header cannot carry', () => {
  assert.throws(() => encodeHeader({ opcode: Opcode.Write, requestId: 2 ** 32 }), RangeError);
  assert.throws(() => encodeHeader({ opcode: Opcode.Write, requestId: 1, seq: -1 }), RangeError);
  assert.throws(() => encodeHeader({ opcode: Opcode.Write, requestId: 1, offset: 2 ** 53 }), RangeError);
  assert.equal(encodeHeader({ opcode: Opcode.Ping, requestId: 1 }).length, HEADER_SIZE);
});
