import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { A, B, assertCheck, harness, nexus } from './harness';

const TUR = [0, 0, 0, 0, 0, 0];
const REQUEST_SENSE = [0x03, 0, 0, 0, 252, 0];
const INQUIRY = [0x12, 0, 0, 0, 36, 0];
const REPORT_LUNS = [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0];

test('a new nexus gets POWER ON, RESET once; INQUIRY and REPORT LUNS do not report it', async () => {
  const h = await harness();
  const c = nexus('charlie');
  h.target.nexusAdded(c);
  await h.good(INQUIRY, { who: c });
  await h.good(REPORT_LUNS, { who: c });
  const sense = assertCheck(await h.run(TUR, { who: c }), 0x6, 0x29, 0x00);
  assert.deepEqual([...sense], [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0, 0, 0, 0, 0]);
  await h.good(TUR, { who: c });
  // Without nexusAdded the first command still sees it.
  const d = nexus('delta');
  assertCheck(await h.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { who: d }), 0x6, 0x29, 0x00);
  await h.good([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { who: d });
});

test('REQUEST SENSE returns and clears the pending unit attention, then NO SENSE', async () => {
  const h = await harness();
  const c = nexus('charlie');
  h.target.nexusAdded(c);
  const first = await h.good(REQUEST_SENSE, { who: c });
  assert.deepEqual([first[0], first[2], first[12], first[13]], [0x70, 0x06, 0x29, 0x00]);
  assert.deepEqual([...(await h.good(REQUEST_SENSE, { who: c }))], [0x70, 0, 0, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  await h.good(TUR, { who: c });
  assert.equal((await h.good([0x03, 0, 0, 0, 8, 0], { who: c })).length, 8);
  assertCheck(await h.run([0x03, 1, 0, 0, 252, 0], { who: c }), 0x5, 0x24, 0x00);
});

test('a resize raises CAPACITY DATA HAS CHANGED on every nexus', async () => {
  const device = new MemoryDevice({ size: 1 << 20, id: 'grow' });
  const h = await harness(device, [A, B]);
  device.resize(2 << 20);
  assertCheck(await h.run(TUR), 0x6, 0x2a, 0x09);
  assertCheck(await h.run(TUR, { who: B }), 0x6, 0x2a, 0x09);
  await h.good(TUR);
  const cap = await h.good([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(cap.readUInt32BE(0), 4095);
  await h.target.close();
  device.resize(4 << 20);
  await h.good(TUR);
});

test('LOGICAL UNIT RESET and TARGET RESET raise unit attentions for every nexus', async () => {
  const h = await harness(undefined, [A, B]);
  h.target.reset({ kind: 'lun', lun: 0 }, A);
  assertCheck(await h.run(TUR), 0x6, 0x29, 0x03);
  assertCheck(await h.run(TUR, { who: B }), 0x6, 0x29, 0x03);
  h.target.reset({ kind: 'target' }, B);
  assertCheck(await h.run(TUR), 0x6, 0x29, 0x00);
  await h.good(TUR);
  h.target.reset({ kind: 'lun', lun: 7 }, A);
  await h.good(TUR);
});

test('unit attentions are reported oldest first, one per command, and dropped with the nexus', async () => {
  const device = new MemoryDevice({ size: 1 << 20, id: 'grow' });
  const h = await harness(device, [A]);
  h.target.reset({ kind: 'lun', lun: 0 }, A);
  device.resize(2 << 20);
  device.resize(3 << 20);
  assertCheck(await h.run(TUR), 0x6, 0x29, 0x03);
  assertCheck(await h.run(TUR), 0x6, 0x2a, 0x09);
  await h.good(TUR);
  h.target.reset({ kind: 'lun', lun: 0 }, A);
  h.target.nexusRemoved(A);
  // The same nexus coming back is new: it gets POWER ON, not the old reset.
  h.target.nexusAdded(A);
  assertCheck(await h.run(TUR), 0x6, 0x29, 0x00);
  await h.good(TUR);
  assert.equal(h.target.hasLun(0), true);
  assert.equal(h.target.hasLun(1), false);
});

test('an unsupported opcode is INVALID COMMAND OPERATION CODE, after any unit attention', async () => {
  const h = await harness();
  const c = nexus('charlie');
  assertCheck(await h.run([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], { who: c }), 0x6, 0x29, 0x00);
  const sense = assertCheck(await h.run([0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], { who: c }), 0x5, 0x20, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0xc0, 0, 0]);
  assertCheck(await h.run([0x9e, 0x1f, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], { who: c }), 0x5, 0x24, 0x00);
  assertCheck(await h.run(Buffer.alloc(0), { who: c }), 0x5, 0x20, 0x00);
  assertCheck(await h.run([0x28, 0, 0], { who: c }), 0x5, 0x20, 0x00);
});
