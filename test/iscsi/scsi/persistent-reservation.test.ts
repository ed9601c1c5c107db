import assert from 'node:assert/strict';
import { test } from 'node:test';
import { A, B, assertCheck, cdb10, harness, nexus, pattern, type Harness } from './harness';
import type { Nexus } from '../../../src/iscsi/scsi/types';

const RESERVATION_CONFLICT = 0x18;
const READ = cdb10(0x28, 0, 1);
const WRITE = cdb10(0x2a, 0, 1);

function prOut(action: number, key: bigint, serviceActionKey: bigint, type = 0, flags = 0, length = 24): { cdb: number[]; dataOut: Buffer } {
  const dataOut = Buffer.alloc(24);
  dataOut.writeBigUInt64BE(key, 0);
  dataOut.writeBigUInt64BE(serviceActionKey, 8);
  dataOut[20] = flags;
  return { cdb: [0x5f, action, type, 0, 0, 0, 0, 0, length, 0], dataOut };
}

function prIn(action: number, allocation = 1024): number[] {
  return [0x5e, action, 0, 0, 0, 0, 0, allocation >> 8, allocation & 0xff, 0];
}

async function out(h: Harness, who: Nexus, action: number, key: bigint, sak: bigint, type = 0) {
  const { cdb, dataOut } = prOut(action, key, sak, type);
  return h.run(cdb, { who, dataOut });
}

async function register(h: Harness, who: Nexus, key: bigint): Promise<void> {
  assert.equal((await out(h, who, 0, 0n, key)).status, 0);
}

async function keys(h: Harness, who: Nexus = A): Promise<{ generation: number; keys: bigint[] }> {
  const data = await h.good(prIn(0), { who });
  const list: bigint[] = [];
  for (let at = 8; at < 8 + data.readUInt32BE(4); at += 8) list.push(data.readBigUInt64BE(at));
  return { generation: data.readUInt32BE(0), keys: list };
}

async function canRead(h: Harness, who: Nexus): Promise<boolean> {
  const r = await h.run(READ, { who });
  assert.ok(r.status === 0 || r.status === RESERVATION_CONFLICT, `status ${r.status}`);
  return r.status === 0;
}

async function canWrite(h: Harness, who: Nexus): Promise<boolean> {
  const r = await h.run(WRITE, { who, dataOut: pattern(512, 1) });
  assert.ok(r.status === 0 || r.status === RESERVATION_CONFLICT, `status ${r.status}`);
  return r.status === 0;
}

test('REGISTER, READ KEYS, key changes and unregister bump the generation', async () => {
  const h = await harness(undefined, [A, B]);
  assert.deepEqual(await keys(h), { generation: 0, keys: [] });
  await register(h, A, 0xaan);
  await register(h, B, 0xbbn);
  assert.deepEqual(await keys(h), { generation: 2, keys: [0xaan, 0xbbn] });
  assert.equal((await out(h, A, 0, 0x99n, 0xa1n)).status, RESERVATION_CONFLICT, 'wrong key');
  assert.equal((await out(h, A, 0, 0xaan, 0xa1n)).status, 0);
  assert.equal((await out(h, A, 6, 0x1234n, 0xa2n)).status, 0, 'REGISTER AND IGNORE EXISTING KEY');
  assert.equal((await out(h, B, 0, 0xbbn, 0n)).status, 0, 'unregister');
  assert.deepEqual(await keys(h), { generation: 5, keys: [0xa2n] });
  // Unregistered nexus with service action key 0: a no-op.
  assert.equal((await out(h, B, 0, 0n, 0n)).status, 0);
  assert.equal((await keys(h)).generation, 5);
});

test('PERSISTENT RESERVE OUT checks its parameter list', async () => {
  const h = await harness(undefined, [A, B]);
  const aptpl = prOut(0, 0n, 1n, 0, 0x01);
  const sense = assertCheck(await h.run(aptpl.cdb, { dataOut: aptpl.dataOut }), 0x5, 0x26, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0x88, 0, 20]);
  const spec = prOut(0, 0n, 1n, 0, 0x08);
  assertCheck(await h.run(spec.cdb, { dataOut: spec.dataOut }), 0x5, 0x26, 0x00);
  const short = prOut(0, 0n, 1n, 0, 0, 20);
  assertCheck(await h.run(short.cdb, { dataOut: short.dataOut }), 0x5, 0x1a, 0x00);
  assertCheck(await h.run([0x5f, 7, 0, 0, 0, 0, 0, 0, 24, 0], { dataOut: Buffer.alloc(24) }), 0x5, 0x24, 0x00);
  // REGISTER ignores SCOPE and TYPE (SPC-4 §6.16.1).
  assert.equal((await out(h, A, 0, 0n, 1n, 0x1f)).status, 0);
  assertCheck(await out(h, A, 1, 1n, 0n, 2), 0x5, 0x24, 0x00);
  assertCheck(await h.run([0x5f, 1, 0x11, 0, 0, 0, 0, 0, 24, 0], { dataOut: prOut(1, 1n, 0n).dataOut }), 0x5, 0x24, 0x00);
  assertCheck(await h.run([0x5e, 4, 0, 0, 0, 0, 0, 0, 24, 0]), 0x5, 0x24, 0x00);
  assert.equal((await out(h, B, 1, 0n, 0n, 1)).status, RESERVATION_CONFLICT, 'RESERVE needs a registration');
});

/** SPC-4 table 60 for the holder A, a registered B and an unregistered C. */
const MATRIX: Array<{ type: number; b: [boolean, boolean]; c: [boolean, boolean] }> = [
  { type: 1, b: [true, false], c: [true, false] },
  { type: 3, b: [false, false], c: [false, false] },
  { type: 5, b: [true, true], c: [true, false] },
  { type: 6, b: [true, true], c: [false, false] },
  { type: 7, b: [true, true], c: [true, false] },
  { type: 8, b: [true, true], c: [false, false] },
];

for (const row of MATRIX) {
  test(`reservation type ${row.type}: access for holder, registrant and stranger; RELEASE`, async () => {
    const C = nexus('charlie');
    const h = await harness(undefined, [A, B, C]);
    await register(h, A, 0xan);
    await register(h, B, 0xbn);
    assert.equal((await out(h, A, 1, 0xan, 0n, row.type)).status, 0);
    assert.equal((await out(h, A, 1, 0xan, 0n, row.type)).status, 0, 'reserving again is a no-op');
    assert.equal((await out(h, B, 1, 0xbn, 0n, row.type === 1 ? 3 : 1)).status, RESERVATION_CONFLICT);
    assert.deepEqual([await canRead(h, A), await canWrite(h, A)], [true, true]);
    assert.deepEqual([await canRead(h, B), await canWrite(h, B)], row.b);
    assert.deepEqual([await canRead(h, C), await canWrite(h, C)], row.c);
    // Commands every nexus may send under any reservation.
    for (const cdb of [[0x12, 0, 0, 0, 36, 0], [0, 0, 0, 0, 0, 0], [0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], [0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0], prIn(1)]) {
      assert.equal((await h.run(cdb, { who: C })).status, 0, `opcode ${cdb[0].toString(16)}`);
    }
    const reservation = await h.good(prIn(1));
    assert.equal(reservation.readUInt32BE(4), 16);
    assert.equal(reservation.readBigUInt64BE(8), row.type >= 7 ? 0n : 0xan);
    assert.equal(reservation[21], row.type);
    assertCheck(await out(h, A, 2, 0xan, 0n, row.type === 1 ? 3 : 1), 0x5, 0x26, 0x04);
    // B's RELEASE: a no-op when A alone holds it; for all-registrants types B is a holder too and releases it.
    assert.equal((await out(h, B, 2, 0xbn, 0n, row.type)).status, 0);
    if (row.type < 7) {
      assert.equal((await h.good(prIn(1), { who: C })).readUInt32BE(4), 16, 'a non-holder RELEASE changes nothing');
      assert.equal((await out(h, A, 2, 0xan, 0n, row.type)).status, 0);
    }
    assert.equal((await h.good(prIn(1), { who: C })).readUInt32BE(4), 0);
    // SPC-4 §5.12.11.2.2: releasing a registrants-only or all-registrants reservation tells the other registrants.
    if (row.type >= 5) assertCheck(await h.run([0, 0, 0, 0, 0, 0], { who: row.type >= 7 ? A : B }), 0x6, 0x2a, 0x04);
    await h.good([0, 0, 0, 0, 0, 0], { who: A });
    await h.good([0, 0, 0, 0, 0, 0], { who: B });
    assert.equal(await canWrite(h, C), true);
  });
}

test('CLEAR drops everything and tells the other registrants RESERVATIONS PREEMPTED', async () => {
  const h = await harness(undefined, [A, B]);
  await register(h, A, 1n);
  await register(h, B, 2n);
  assert.equal((await out(h, A, 1, 1n, 0n, 1)).status, 0);
  assert.equal((await out(h, B, 3, 9n, 0n)).status, RESERVATION_CONFLICT);
  assert.equal((await out(h, B, 3, 2n, 0n)).status, 0);
  assert.deepEqual((await keys(h, B)).keys, []);
  assertCheck(await h.run([0, 0, 0, 0, 0, 0]), 0x6, 0x2a, 0x03);
  await h.good([0, 0, 0, 0, 0, 0], { who: B });
  assert.equal(await canWrite(h, A), true);
});

test('PREEMPT takes over the reservation and removes the preempted registration', async () => {
  const h = await harness(undefined, [A, B]);
  await register(h, A, 1n);
  await register(h, B, 2n);
  assert.equal((await out(h, A, 1, 1n, 0n, 3)).status, 0);
  assert.equal(await canRead(h, B), false);
  assert.equal((await out(h, B, 4, 2n, 1n, 1)).status, 0);
  assert.deepEqual((await keys(h, B)).keys, [2n]);
  const reservation = await h.good(prIn(1), { who: B });
  assert.deepEqual([reservation.readBigUInt64BE(8), reservation[21]], [2n, 1]);
  assertCheck(await h.run(READ), 0x6, 0x2a, 0x05);
  assert.equal(await canRead(h, A), true, 'write exclusive lets others read');
  assert.equal(await canWrite(h, A), false);
  // Preempting a key nobody holds, or key 0 without an all-registrants reservation, fails.
  assert.equal((await out(h, B, 5, 2n, 7n, 1)).status, RESERVATION_CONFLICT);
  assertCheck(await out(h, B, 4, 2n, 0n, 1), 0x5, 0x26, 0x00);
  assert.equal((await out(h, A, 4, 1n, 2n, 1)).status, RESERVATION_CONFLICT, 'A is no longer registered');
});

test('PREEMPT of an all-registrants reservation with key 0 removes every other registrant', async () => {
  const C = nexus('charlie');
  const h = await harness(undefined, [A, B, C]);
  await register(h, A, 1n);
  await register(h, B, 2n);
  await register(h, C, 3n);
  assert.equal((await out(h, A, 1, 1n, 0n, 8)).status, 0);
  assert.equal((await out(h, B, 4, 2n, 0n, 3)).status, 0);
  assert.deepEqual((await keys(h, B)).keys, [2n]);
  assertCheck(await h.run(READ), 0x6, 0x2a, 0x05);
  assert.equal(await canRead(h, A), false);
  assertCheck(await h.run([0, 0, 0, 0, 0, 0], { who: C }), 0x6, 0x2a, 0x05);
});

test('READ FULL STATUS and REPORT CAPABILITIES', async () => {
  const h = await harness(undefined, [A, B]);
  await register(h, A, 0x1111n);
  await register(h, B, 0x2222n);
  assert.equal((await out(h, B, 1, 0x2222n, 0n, 5)).status, 0);
  const status = await h.good(prIn(3));
  assert.equal(status.readUInt32BE(0), 2);
  const descriptors: Array<{ key: bigint; holder: number; type: number; tid: string }> = [];
  for (let at = 8; at < status.length; ) {
    const tidLength = status.readUInt32BE(at + 20);
    const tid = status.subarray(at + 24, at + 24 + tidLength);
    assert.equal(tid[0], 0x45, 'iSCSI TransportID, format 01b');
    assert.equal(tid.readUInt16BE(2), tidLength - 4);
    descriptors.push({ key: status.readBigUInt64BE(at), holder: status[at + 12], type: status[at + 13], tid: tid.subarray(4).toString('utf8').replace(/\0+$/, '') });
    at += 24 + tidLength;
  }
  assert.deepEqual(descriptors, [
    { key: 0x1111n, holder: 0, type: 0, tid: `${A.initiatorName},i,0x${A.isid}` },
    { key: 0x2222n, holder: 1, type: 5, tid: `${B.initiatorName},i,0x${B.isid}` },
  ]);
  assert.deepEqual([...(await h.good(prIn(2)))], [0, 8, 0x10, 0x80, 0xea, 0x01, 0, 0]);
  assert.equal((await h.good(prIn(2, 4))).length, 4);
});

test('registrations survive the session; a new session of the same I_T nexus finds them', async () => {
  const h = await harness(undefined, [A, B]);
  await register(h, A, 5n);
  assert.equal((await out(h, A, 1, 5n, 0n, 1)).status, 0);
  h.target.nexusRemoved(A);
  h.target.nexusAdded(A);
  assertCheck(await h.run(READ), 0x6, 0x29, 0x00);
  assert.equal(await canWrite(h, A), true);
  assert.equal(await canWrite(h, B), false);
});

test('RESERVE(6)/RELEASE(6) legacy reservations', async () => {
  const h = await harness(undefined, [A, B]);
  await h.good([0x16, 0, 0, 0, 0, 0]);
  assert.equal(await canRead(h, B), false);
  assert.equal((await h.run([0x16, 0, 0, 0, 0, 0], { who: B })).status, RESERVATION_CONFLICT);
  await h.good([0x12, 0, 0, 0, 36, 0], { who: B });
  await h.good([0x17, 0, 0, 0, 0, 0], { who: B });
  assert.equal(await canRead(h, B), false, "another nexus's RELEASE(6) is a no-op");
  await h.good([0x17, 0, 0, 0, 0, 0]);
  assert.equal(await canWrite(h, B), true);
  await h.good([0x16, 0, 0, 0, 0, 0], { who: B });
  h.target.nexusRemoved(B);
  assert.equal(await canWrite(h, A), true, 'a nexus loss releases it');
  await register(h, A, 1n);
  assert.equal((await h.run([0x16, 0, 0, 0, 0, 0])).status, RESERVATION_CONFLICT, 'refused while persistent reservations are in use');
});
