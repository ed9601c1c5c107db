import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { A, B, assertCheck, cdb10, harness, pattern } from './harness';

function caw(lba: number, blocks: number, byte1 = 0): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x89;
  cdb[1] = byte1;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb[13] = blocks;
  return cdb;
}

function counterBlock(value: number): Buffer {
  const block = Buffer.alloc(512);
  block.writeUInt32BE(value, 0);
  return block;
}

/** A real MemoryDevice whose I/O yields to the event loop a few times, so concurrent commands really interleave. */
class SlowDevice extends MemoryDevice {
  override async read(offset: number, length: number): Promise<Buffer> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return super.read(offset, length);
  }

  override async write(offset: number, data: Buffer): Promise<void> {
    await new Promise((resolve) => setTimeout(resolve, 1));
    return super.write(offset, data);
  }
}

test('COMPARE AND WRITE writes on a match and reports the miscompare offset otherwise', async () => {
  const h = await harness();
  const old = pattern(1024, 1);
  const replacement = pattern(1024, 2);
  await h.good(cdb10(0x2a, 10, 2), { dataOut: old });
  await h.good(caw(10, 2, 0x08), { dataOut: Buffer.concat([old, replacement]) });
  assert.deepEqual(await h.good(cdb10(0x28, 10, 2)), replacement);
  const wrong = Buffer.from(replacement);
  wrong[700] ^= 1;
  const sense = assertCheck(await h.run(caw(10, 2), { dataOut: Buffer.concat([wrong, old]) }), 0xe, 0x1d, 0x00);
  assert.deepEqual([...sense.subarray(0, 7)], [0xf0, 0, 0x0e, 0, 0, 0x02, 0xbc]);
  assert.deepEqual(await h.good(cdb10(0x28, 10, 2)), replacement, 'nothing written on a miscompare');
  await h.good(caw(10, 0));
  // The Data-Out must be exactly verify + write blocks.
  assertCheck(await h.run(caw(10, 2), { dataOut: old }), 0x5, 0x24, 0x00);
  assertCheck(await h.run(caw(10, 1), { dataOut: Buffer.concat([replacement, old]) }), 0x5, 0x24, 0x00);
  assertCheck(await h.run(caw(10, 0), { dataOut: old }), 0x5, 0x24, 0x00);
  assert.deepEqual(await h.good(cdb10(0x28, 10, 2)), replacement);
  assert.equal((await h.run(caw(10, 2), { dataOut: Buffer.concat([replacement, old]) })).dataOutLength, 2048);
  assertCheck(await h.run(caw(64 * 2048 - 1, 2), { dataOut: Buffer.concat([old, old]) }), 0x5, 0x21, 0x00);
});

test('COMPARE AND WRITE is atomic: concurrent increments from two nexuses never lose an update', async () => {
  const h = await harness(new SlowDevice({ size: 1 << 20, id: 'slow' }), [A, B]);
  await h.good(cdb10(0x2a, 5, 1), { dataOut: counterBlock(0) });
  let successes = 0;
  let miscompares = 0;
  // Each worker reads the counter and tries to CAW value -> value + 1; a lost update would let two succeed from one value.
  const worker = async (who: typeof A) => {
    for (let i = 0; i < 25; i += 1) {
      const current = (await h.good(cdb10(0x28, 5, 1), { who })).readUInt32BE(0);
      const result = await h.run(caw(5, 1), { who, dataOut: Buffer.concat([counterBlock(current), counterBlock(current + 1)]) });
      if (result.status === 0) successes += 1;
      else {
        assertCheck(result, 0xe, 0x1d, 0x00);
        miscompares += 1;
      }
    }
  };
  await Promise.all([worker(A), worker(B), worker(A), worker(B)]);
  const final = (await h.good(cdb10(0x28, 5, 1))).readUInt32BE(0);
  assert.equal(final, successes);
  assert.equal(successes + miscompares, 100);
  assert.ok(miscompares > 0, 'the workers did race');
});

test('a WRITE issued while COMPARE AND WRITE runs lands after it, never between compare and write', async () => {
  const h = await harness(new SlowDevice({ size: 1 << 20, id: 'slow' }), [A, B]);
  await h.good(cdb10(0x2a, 0, 4), { dataOut: Buffer.alloc(2048, 0x11) });
  const compare = h.run(caw(0, 4), { dataOut: Buffer.concat([Buffer.alloc(2048, 0x11), Buffer.alloc(2048, 0x22)]) });
  const write = h.run(cdb10(0x2a, 2, 1), { who: B, dataOut: Buffer.alloc(512, 0x33) });
  const [c, w] = await Promise.all([compare, write]);
  assert.equal(c.status, 0);
  assert.equal(w.status, 0);
  const data = await h.good(cdb10(0x28, 0, 4));
  assert.deepEqual(data.subarray(0, 1024), Buffer.alloc(1024, 0x22));
  assert.deepEqual(data.subarray(1024, 1536), Buffer.alloc(512, 0x33));
  assert.deepEqual(data.subarray(1536), Buffer.alloc(512, 0x22));
});
