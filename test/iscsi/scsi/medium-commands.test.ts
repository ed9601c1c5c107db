import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCheck, cdb10, cdb16, harness, pattern } from './harness';

test('PRE-FETCH(10/16) checks the range and answers GOOD', async () => {
  const h = await harness();
  await h.good(cdb10(0x34, 0, 100));
  await h.good(cdb16(0x90, 1000, 8, 0x02));
  assertCheck(await h.run(cdb10(0x34, 64 * 2048, 1)), 0x5, 0x21, 0x00);
  assertCheck(await h.run(cdb16(0x90, 64 * 2048 - 1, 2)), 0x5, 0x21, 0x00);
});

test('ORWRITE(16) ORs the Data-Out into the medium', async () => {
  const h = await harness();
  await h.good(cdb10(0x2a, 20, 2), { dataOut: Buffer.alloc(1024, 0x0f) });
  const result = await h.run(cdb16(0x8b, 20, 2), { dataOut: Buffer.alloc(1024, 0x30) });
  assert.equal(result.status, 0);
  assert.equal(result.dataOutLength, 1024);
  assert.deepEqual(await h.good(cdb10(0x28, 20, 2)), Buffer.alloc(1024, 0x3f));
  assertCheck(await h.run(cdb16(0x8b, 20, 2), { dataOut: pattern(512, 1) }), 0x5, 0x0e, 0x03);
  assertCheck(await h.run(cdb16(0x8b, 20, 2, 0x20), { dataOut: Buffer.alloc(1024) }), 0x5, 0x24, 0x00);
});

test('READ DEFECT DATA(10/12) reports an empty list in the format asked for', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good([0x37, 0, 0x1d, 0, 0, 0, 0, 0, 255, 0]))], [0, 0x1d, 0, 0]);
  assert.deepEqual([...(await h.good([0xb7, 0x0c, 0, 0, 0, 0, 0, 0, 0, 255, 0, 0]))], [0, 0x0c, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...(await h.good([0xb7, 0x0c, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0]))], [0, 0x0c]);
});
