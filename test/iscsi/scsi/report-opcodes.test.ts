import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertCheck, harness } from './harness';

function rsoc(options: number, opcode = 0, serviceAction = 0, allocation = 8192, rctd = false): number[] {
  return [0xa3, 0x0c, (rctd ? 0x80 : 0) | options, opcode, serviceAction >> 8, serviceAction & 0xff, 0, 0, allocation >> 8, allocation & 0xff, 0, 0];
}

test('REPORT SUPPORTED OPERATION CODES, all commands, with and without timeouts', async () => {
  const h = await harness();
  const data = await h.good(rsoc(0));
  const length = data.readUInt32BE(0);
  assert.equal(length, data.length - 4);
  assert.equal(length % 8, 0);
  const entries: Array<{ opcode: number; sa: number; flags: number; cdb: number }> = [];
  for (let at = 4; at < data.length; at += 8) entries.push({ opcode: data[at], sa: data.readUInt16BE(at + 2), flags: data[at + 5], cdb: data.readUInt16BE(at + 6) });
  const find = (opcode: number, sa = 0) => entries.find((e) => e.opcode === opcode && e.sa === sa);
  assert.deepEqual(find(0x28), { opcode: 0x28, sa: 0, flags: 0, cdb: 10 });
  assert.deepEqual(find(0x9e, 0x10), { opcode: 0x9e, sa: 0x10, flags: 1, cdb: 16 });
  assert.deepEqual(find(0x89), { opcode: 0x89, sa: 0, flags: 0, cdb: 16 });
  assert.equal(find(0x5f, 7), undefined, 'REGISTER AND MOVE is not offered');
  for (const opcode of [0x00, 0x03, 0x08, 0x0a, 0x12, 0x15, 0x1a, 0x1b, 0x25, 0x2a, 0x2e, 0x2f, 0x35, 0x41, 0x42, 0x55, 0x5a, 0x88, 0x8a, 0x8f, 0x91, 0x93, 0xa0, 0xa8, 0xaa]) {
    assert.ok(find(opcode), `opcode ${opcode.toString(16)} listed`);
  }
  const timed = await h.good(rsoc(0, 0, 0, 8192, true));
  assert.equal(timed.readUInt32BE(0), (length / 8) * 20);
  assert.equal(timed[4 + 5] & 0x02, 0x02, 'CTDP');
  assert.equal(timed.readUInt16BE(12), 0x0a);
  assert.equal((await h.good(rsoc(0, 0, 0, 10))).length, 10);
});

test('REPORT SUPPORTED OPERATION CODES, one command: usage data, unsupported, service action rules', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good(rsoc(1, 0x28)))], [0, 0x03, 0, 10, 0x28, 0x1a, 0xff, 0xff, 0xff, 0xff, 0x1f, 0xff, 0xff, 0x00]);
  assert.deepEqual([...(await h.good(rsoc(1, 0x29)))], [0, 0x01, 0, 0]);
  assertCheck(await h.run(rsoc(1, 0x9e)), 0x5, 0x24, 0x00);
  const cap16 = await h.good(rsoc(2, 0x9e, 0x10));
  assert.deepEqual([...cap16.subarray(0, 6)], [0, 0x03, 0, 16, 0x9e, 0x10]);
  assert.deepEqual([...(await h.good(rsoc(2, 0x9e, 0x11)))], [0, 0x01, 0, 0]);
  assertCheck(await h.run(rsoc(2, 0x28)), 0x5, 0x24, 0x00);
  assert.deepEqual((await h.good(rsoc(3, 0x28))).subarray(0, 5), Buffer.from([0, 0x03, 0, 10, 0x28]));
  const timed = await h.good(rsoc(1, 0x00, 0, 100, true));
  assert.deepEqual([...timed.subarray(0, 4)], [0, 0x83, 0, 6]);
  assert.equal(timed.length, 4 + 6 + 12);
  assertCheck(await h.run(rsoc(5)), 0x5, 0x24, 0x00);
});

test('every usage map reported is one the target enforces', async () => {
  const h = await harness();
  const data = await h.good(rsoc(0));
  for (let at = 4; at < data.length; at += 8) {
    const opcode = data[at];
    const sa = data.readUInt16BE(at + 2);
    const hasSa = (data[at + 5] & 0x01) !== 0;
    const one = await h.good(rsoc(hasSa ? 2 : 1, opcode, sa));
    assert.equal(one[4], opcode);
    const usage = one.subarray(4);
    assert.equal(usage.length, data.readUInt16BE(at + 6));
    // A bit outside the map in a byte that has reserved bits must be refused.
    for (let byte = 1; byte < usage.length; byte += 1) {
      const allowed = usage[byte] | (byte === 1 && hasSa ? 0x1f : 0);
      if (allowed === 0xff) continue;
      const cdb = Buffer.alloc(usage.length);
      cdb[0] = opcode;
      if (hasSa) cdb[1] = sa;
      const bit = 31 - Math.clz32(~allowed & 0xff);
      cdb[byte] |= 1 << bit;
      const result = await h.run(cdb, { dataOut: Buffer.alloc(4096) });
      assert.equal(result.status, 2, `${opcode.toString(16)}/${sa} byte ${byte} bit ${bit}`);
      const sense = result.sense ?? Buffer.alloc(18);
      assert.deepEqual([sense[2], sense[12], sense[15] & 0xc0, sense.readUInt16BE(16)], [0x05, 0x24, 0xc0, byte], `${opcode.toString(16)} byte ${byte}`);
    }
  }
});

test('REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good([0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0]))], [0xda, 0, 0, 0]);
  const extended = await h.good([0xa3, 0x0d, 0x80, 0, 0, 0, 0, 0, 0, 16, 0, 0]);
  assert.deepEqual([...extended.subarray(0, 4)], [0xda, 0, 0, 0x0c]);
  assert.equal(extended.length, 16);
  assertCheck(await h.run([0xa3, 0x0d, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0]), 0x5, 0x24, 0x00);
});
