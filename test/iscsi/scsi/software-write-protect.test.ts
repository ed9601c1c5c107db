import assert from 'node:assert/strict';
import { test } from 'node:test';
import { A, B, assertCheck, cdb10, cdb16, harness, pattern, type Harness } from './harness';

const BLOCK = 512;
/** Control mode page (SPC-4 §7.5.8) as Trireme reports it, SWP off. */
const CONTROL = [0x0a, 0x0a, 0x00, 0x10, 0, 0, 0, 0, 0xff, 0xff, 0, 0];
const CONTROL_SWP = [0x0a, 0x0a, 0x00, 0x10, 0x08, 0, 0, 0, 0xff, 0xff, 0, 0];
/** Fixed-format sense: DATA PROTECT, LOGICAL UNIT SOFTWARE WRITE PROTECTED (27h/02h). */
const WRITE_PROTECTED = [0x70, 0, 0x07, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x27, 0x02, 0, 0, 0, 0];
/** Fixed-format sense: UNIT ATTENTION, MODE PARAMETERS CHANGED (2Ah/01h). */
const MODE_CHANGED = [0x70, 0, 0x06, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x2a, 0x01, 0, 0, 0, 0];

const senseControl6 = (pc = 0) => [0x1a, 0x08, (pc << 6) | 0x0a, 0, 255, 0];
const senseControl10 = [0x5a, 0x08, 0x0a, 0, 0, 0, 0, 0, 255, 0];

function setSwp(h: Harness, on: boolean, who = A, ten = false) {
  const page = on ? CONTROL_SWP : CONTROL;
  if (ten) {
    const list = Buffer.from([0, 0, 0, 0, 0, 0, 0, 0, ...page]);
    return h.run([0x55, 0x10, 0, 0, 0, 0, 0, 0, list.length, 0], { dataOut: list, who });
  }
  const list = Buffer.from([0, 0, 0, 0, ...page]);
  return h.run([0x15, 0x10, 0, 0, list.length, 0], { dataOut: list, who });
}

const unmapList = Buffer.from([0, 22, 0, 16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0]);

/** Every command that writes the medium (SBC-3), with a valid CDB and Data-Out for LBA 0. */
const WRITES: { name: string; cdb: number[] | Buffer; dataOut: Buffer }[] = [
  { name: 'WRITE(6)', cdb: [0x0a, 0, 0, 0, 1, 0], dataOut: pattern(BLOCK, 1) },
  { name: 'WRITE(10)', cdb: cdb10(0x2a, 0, 1), dataOut: pattern(BLOCK, 2) },
  { name: 'WRITE(12)', cdb: [0xaa, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], dataOut: pattern(BLOCK, 3) },
  { name: 'WRITE(16)', cdb: cdb16(0x8a, 0, 1), dataOut: pattern(BLOCK, 4) },
  { name: 'WRITE AND VERIFY(10)', cdb: cdb10(0x2e, 0, 1), dataOut: pattern(BLOCK, 5) },
  { name: 'WRITE AND VERIFY(12)', cdb: [0xae, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0], dataOut: pattern(BLOCK, 6) },
  { name: 'WRITE AND VERIFY(16)', cdb: cdb16(0x8e, 0, 1), dataOut: pattern(BLOCK, 7) },
  { name: 'WRITE SAME(10)', cdb: cdb10(0x41, 0, 1), dataOut: pattern(BLOCK, 8) },
  { name: 'WRITE SAME(16)', cdb: cdb16(0x93, 0, 1), dataOut: pattern(BLOCK, 9) },
  { name: 'UNMAP', cdb: [0x42, 0, 0, 0, 0, 0, 0, 0, unmapList.length, 0], dataOut: unmapList },
  { name: 'COMPARE AND WRITE', cdb: cdb16(0x89, 0, 1), dataOut: Buffer.concat([pattern(BLOCK, 11), pattern(BLOCK, 12)]) },
  { name: 'ORWRITE(16)', cdb: cdb16(0x8b, 0, 1), dataOut: pattern(BLOCK, 13) },
];

test('MODE SENSE: SWP is the one changeable field of the Control page; default is off', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good(senseControl6(1)))], [15, 0, 0x10, 0, 0x0a, 0x0a, 0, 0, 0x08, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual([...(await h.good(senseControl6(0)))], [15, 0, 0x10, 0, ...CONTROL]);
  assert.equal((await setSwp(h, true)).status, 0);
  assert.deepEqual([...(await h.good(senseControl6(0)))], [15, 0, 0x90, 0, ...CONTROL_SWP], 'WP=1 in the device-specific parameter');
  assert.deepEqual([...(await h.good(senseControl10))], [0, 18, 0, 0x90, 0, 0, 0, 0, ...CONTROL_SWP]);
  assert.deepEqual([...(await h.good(senseControl6(2)))], [15, 0, 0x90, 0, ...CONTROL], 'default values keep SWP off');
});

for (const { name, cdb, dataOut } of WRITES) {
  test(`${name} with SWP set: DATA PROTECT 27h/02h, medium unchanged; allowed again once cleared`, async () => {
    const h = await harness();
    const before = pattern(BLOCK, 99);
    await h.good(cdb10(0x2a, 0, 1), { dataOut: before });
    // COMPARE AND WRITE compares against what is there: make its verify half match.
    const data = name === 'COMPARE AND WRITE' ? Buffer.concat([before, dataOut.subarray(BLOCK)]) : dataOut;
    assert.equal((await setSwp(h, true)).status, 0);
    const refused = await h.run(cdb, { dataOut: data });
    assert.equal(refused.status, 2);
    assert.deepEqual([...(refused.sense ?? [])], WRITE_PROTECTED);
    assert.deepEqual(await h.good(cdb10(0x28, 0, 1)), before, 'the medium is unchanged');
    assert.equal((await setSwp(h, false, A, true)).status, 0);
    await h.good(cdb, { dataOut: data });
  });
}

test('SWP set: reads, VERIFY, SYNCHRONIZE CACHE, TEST UNIT READY and MODE SELECT still run', async () => {
  const h = await harness();
  assert.equal((await setSwp(h, true)).status, 0);
  assert.equal((await h.good(cdb10(0x28, 0, 8))).length, 8 * BLOCK);
  await h.good(cdb10(0x2f, 0, 8));
  await h.good(cdb10(0x35, 0, 0));
  await h.good(cdb16(0x91, 0, 0));
  await h.good([0, 0, 0, 0, 0, 0]);
  assert.equal((await setSwp(h, true)).status, 0, 'setting it again is accepted');
});

test('a change of SWP raises MODE PARAMETERS CHANGED on the other I_T nexuses only, once per change', async () => {
  const h = await harness(undefined, [A, B]);
  assert.equal((await setSwp(h, true, A)).status, 0);
  await h.good([0, 0, 0, 0, 0, 0], { who: A });
  const ua = await h.run([0, 0, 0, 0, 0, 0], { who: B });
  assert.deepEqual([...(ua.sense ?? [])], MODE_CHANGED);
  // The setting is per LU: B sees WP=1 and its writes are refused too.
  assert.deepEqual([...(await h.good(senseControl6(0), { who: B }))], [15, 0, 0x90, 0, ...CONTROL_SWP]);
  assert.deepEqual([...((await h.run(cdb10(0x2a, 0, 1), { dataOut: pattern(BLOCK, 1), who: B })).sense ?? [])], WRITE_PROTECTED);
  // Selecting the value already current changes nothing and raises nothing.
  assert.equal((await setSwp(h, true, B)).status, 0);
  await h.good([0, 0, 0, 0, 0, 0], { who: A });
  assert.equal((await setSwp(h, false, B, true)).status, 0);
  assert.deepEqual([...((await h.run([0, 0, 0, 0, 0, 0], { who: A })).sense ?? [])], MODE_CHANGED);
  await h.good([0, 0, 0, 0, 0, 0], { who: B });
  await h.good(cdb10(0x2a, 0, 1), { dataOut: pattern(BLOCK, 1), who: A });
});

test('a MODE SELECT that also changes an unchangeable field is refused and leaves SWP as it was', async () => {
  const h = await harness(undefined, [A, B]);
  const bad = [...CONTROL_SWP];
  bad[3] = 0x00; // QUEUE ALGORITHM MODIFIER is not changeable
  const list = Buffer.from([0, 0, 0, 0, ...bad]);
  const sense = assertCheck(await h.run([0x15, 0x10, 0, 0, list.length, 0], { dataOut: list }), 0x5, 0x26, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0x8c, 0, 7]);
  assert.deepEqual([...(await h.good(senseControl6(0)))], [15, 0, 0x10, 0, ...CONTROL]);
  await h.good([0, 0, 0, 0, 0, 0], { who: B });
});

test('LOGICAL UNIT RESET and target reset return SWP to its default (SPC-4 §6.11: current values revert)', async () => {
  const h = await harness();
  for (const scope of [{ kind: 'lun', lun: 0 } as const, { kind: 'target' } as const]) {
    assert.equal((await setSwp(h, true)).status, 0);
    h.target.reset(scope, A);
    assertCheck(await h.run([0, 0, 0, 0, 0, 0]), 0x6, 0x29, scope.kind === 'lun' ? 0x03 : 0x00);
    assert.deepEqual([...(await h.good(senseControl6(0)))], [15, 0, 0x10, 0, ...CONTROL]);
    await h.good(cdb10(0x2a, 0, 1), { dataOut: pattern(BLOCK, 1) });
  }
});
