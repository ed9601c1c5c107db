import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCheck, harness } from './harness';

const sense6 = (page: number, { dbd = false, pc = 0, subpage = 0, allocation = 255 } = {}) => [0x1a, dbd ? 0x08 : 0, (pc << 6) | page, subpage, allocation, 0];
const sense10 = (page: number, { dbd = false, llbaa = false, pc = 0, allocation = 1024 } = {}) => [
  0x5a,
  (dbd ? 0x08 : 0) | (llbaa ? 0x10 : 0),
  (pc << 6) | page,
  0,
  0,
  0,
  0,
  allocation >> 8,
  allocation & 0xff,
  0,
];

const CACHING = [0x08, 0x12, 0x04, ...new Array<number>(17).fill(0)];
const CONTROL = [0x0a, 0x0a, 0x00, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0];
const IEC = [0x1c, 0x0a, 0x08, ...new Array<number>(9).fill(0)];

test('MODE SENSE(6): header, block descriptor, caching page with WCE=1', async () => {
  const h = await harness();
  const data = await h.good(sense6(0x08));
  assert.deepEqual([...data], [3 + 8 + 20, 0, 0x10, 8, 0, 0x02, 0x00, 0x00, 0, 0, 0x02, 0x00, ...CACHING]);
  assert.deepEqual([...(await h.good(sense6(0x08, { dbd: true })))], [3 + 20, 0, 0x10, 0, ...CACHING]);
  assert.deepEqual([...(await h.good(sense6(0x0a, { dbd: true })))], [3 + 12, 0, 0x10, 0, ...CONTROL]);
  assert.deepEqual([...(await h.good(sense6(0x1c, { dbd: true })))], [3 + 12, 0, 0x10, 0, ...IEC]);
  assert.deepEqual([...(await h.good(sense6(0x3f, { dbd: true })))], [3 + 44, 0, 0x10, 0, ...CACHING, ...CONTROL, ...IEC]);
  assert.deepEqual([...(await h.good(sense6(0x3f, { dbd: true, subpage: 0xff })))], [3 + 44, 0, 0x10, 0, ...CACHING, ...CONTROL, ...IEC]);
  assert.deepEqual([...(await h.good(sense6(0x3f, { allocation: 4 })))], [3 + 8 + 44, 0, 0x10, 8]);
});

test('MODE SENSE page control: changeable is all zero, default equals current, saved is refused', async () => {
  const h = await harness();
  const changeable = await h.good(sense6(0x08, { dbd: true, pc: 1 }));
  assert.deepEqual([...changeable], [23, 0, 0x10, 0, 0x08, 0x12, ...new Array<number>(18).fill(0)]);
  assert.deepEqual(await h.good(sense6(0x3f, { pc: 2 })), await h.good(sense6(0x3f)));
  const saved = assertCheck(await h.run(sense6(0x08, { pc: 3 })), 0x5, 0x39, 0x00);
  assert.deepEqual([...saved.subarray(15)], [0xcf, 0, 2]);
  const unknown = assertCheck(await h.run(sense6(0x19)), 0x5, 0x24, 0x00);
  assert.deepEqual([...unknown.subarray(15)], [0xcd, 0, 2]);
  assertCheck(await h.run(sense6(0x08, { subpage: 1 })), 0x5, 0x24, 0x00);
});

test('MODE SENSE(10) with short and long LBA block descriptors', async () => {
  const h = await harness();
  const data = await h.good(sense10(0x08));
  assert.deepEqual([...data.subarray(0, 16)], [0, 6 + 8 + 20, 0, 0x10, 0, 0, 0, 8, 0, 0x02, 0, 0, 0, 0, 0x02, 0]);
  const long = await h.good(sense10(0x08, { llbaa: true }));
  assert.deepEqual([...long.subarray(0, 24)], [0, 6 + 16 + 20, 0, 0x10, 1, 0, 0, 16, 0, 0, 0, 0, 0, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0]);
  assert.deepEqual([...long.subarray(24)], CACHING);
  assert.deepEqual([...(await h.good(sense10(0x3f, { dbd: true })))], [0, 6 + 44, 0, 0x10, 0, 0, 0, 0, ...CACHING, ...CONTROL, ...IEC]);
});

test('MODE SELECT accepts current values and refuses any change with a field pointer', async () => {
  const h = await harness();
  const select6 = (list: number[], byte1 = 0x10) => h.run([0x15, byte1, 0, 0, list.length, 0], { dataOut: Buffer.from(list) });
  const current = await h.good(sense6(0x08));
  const list = [...current];
  list[0] = 0;
  assert.equal((await select6(list)).status, 0);
  assert.equal((await select6([0, 0, 0, 0, ...CONTROL])).status, 0);
  const noWce = [0, 0, 0, 0, ...CACHING];
  noWce[6] = 0x00;
  const sense = assertCheck(await select6(noWce), 0x5, 0x26, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0x8a, 0, 6]);
  const blockLength = [...list];
  blockLength[10] = 0x10;
  assertCheck(await select6(blockLength), 0x5, 0x26, 0x00);
  assertCheck(await select6([0, 0, 0, 0, 0x19, 2, 0, 0]), 0x5, 0x26, 0x00);
  assertCheck(await select6([0, 0, 0, 0, ...CONTROL.slice(0, 6)]), 0x5, 0x1a, 0x00);
  assertCheck(await select6([0, 0, 0, 0, ...CACHING], 0x11), 0x5, 0x24, 0x00);
  const ten = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, ...CACHING]);
  assert.equal((await h.run([0x55, 0x10, 0, 0, 0, 0, 0, 0, ten.length, 0], { dataOut: ten })).status, 0);
  assert.equal((await h.run([0x15, 0x10, 0, 0, 0, 0])).status, 0, 'an empty parameter list changes nothing');
});
