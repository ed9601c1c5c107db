import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cdb10, harness, pattern } from './harness';

test('basic commands answer', async () => {
  const h = await harness();
  const inq = await h.good([0x12, 0, 0, 0, 96, 0]);
  assert.equal(inq.subarray(8, 15).toString(), 'TRIREME');
  const cap = await h.good(cdb10(0x25, 0, 0));
  assert.equal(cap.readUInt32BE(0), 64 * 2048 - 1);
  await h.good(cdb10(0x2a, 10, 2), { dataOut: pattern(1024, 1) });
  assert.deepEqual(await h.good(cdb10(0x28, 10, 2)), pattern(1024, 1));
  await h.good([0x1a, 0, 0x3f, 0, 255, 0]);
  await h.good([0xa0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
});
