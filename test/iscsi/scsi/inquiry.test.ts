import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { naaIdentifier } from '../../../src/iscsi/scsi/vpd-pages';
import { A, IQN, assertCheck, harness } from './harness';

const inquiry = (evpd: number, page: number, allocation = 255) => [0x12, evpd, page, allocation >> 8, allocation & 0xff, 0];

test('standard INQUIRY: vendor, SPC-4, HiSup, CmdQue, TPGS 0 (SPC-4 §6.4.2)', async () => {
  const h = await harness();
  const data = await h.good(inquiry(0, 0));
  assert.equal(data.length, 66);
  assert.deepEqual([...data.subarray(0, 8)], [0x00, 0x00, 0x06, 0x12, 61, 0x00, 0x00, 0x02]);
  assert.equal(data.subarray(8, 16).toString('ascii'), 'TRIREME ');
  assert.equal(data.subarray(16, 32).toString('ascii'), 'VIRTUAL-DISK    ');
  assert.equal(data.subarray(32, 36).toString('ascii'), '0001');
  assert.equal(data.readUInt16BE(60), 0x0960, 'iSCSI version descriptor');
  assert.deepEqual(await h.good(inquiry(0, 0, 5)), data.subarray(0, 5), 'truncated to the allocation length');
  assert.equal((await h.good(inquiry(0, 0, 0))).length, 0);
});

test('INQUIRY checks EVPD, page code and reserved bits with field pointers', async () => {
  const h = await harness();
  const sense = assertCheck(await h.run(inquiry(0, 0x80)), 0x5, 0x24, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0xc0, 0x00, 0x02]);
  assertCheck(await h.run(inquiry(1, 0x99)), 0x5, 0x24, 0x00);
  const cmddt = assertCheck(await h.run(inquiry(0x02, 0)), 0x5, 0x24, 0x00);
  assert.deepEqual([...cmddt.subarray(15)], [0xc9, 0x00, 0x01], 'CmdDt: byte 1 bit 1');
  const naca = assertCheck(await h.run([0x12, 0, 0, 0, 255, 0x04]), 0x5, 0x24, 0x00);
  assert.deepEqual([...naca.subarray(15)], [0xca, 0x00, 0x05], 'NACA=1 with NormACA=0');
});

test('VPD pages 00h, 80h, B0h, B1h, B2h', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good(inquiry(1, 0x00)))], [0, 0, 0, 6, 0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2]);
  const serial = await h.good(inquiry(1, 0x80));
  assert.deepEqual([...serial.subarray(0, 4)], [0, 0x80, 0, 13]);
  assert.equal(serial.subarray(4).toString('ascii'), 'vol-test-0001');
  const limits = await h.good(inquiry(1, 0xb0));
  assert.equal(limits.length, 64);
  assert.deepEqual([...limits.subarray(0, 6)], [0, 0xb0, 0, 0x3c, 0x01, 255]);
  assert.equal(limits.readUInt16BE(6), 8, 'optimal transfer granularity: 4 KiB');
  assert.equal(limits.readUInt32BE(8), 65536, 'max transfer: 32 MiB of 512-byte blocks');
  assert.equal(limits.readUInt32BE(12), 2048);
  assert.equal(limits.readUInt32BE(20), 1048576, 'max unmap LBA count: 2^20');
  assert.equal(limits.readUInt32BE(24), 64, 'max unmap descriptors');
  assert.equal(limits.readUInt32BE(28), 8, 'unmap granularity');
  assert.equal(limits.readUInt32BE(32), 0x80000000, 'UGAVALID, alignment 0');
  assert.equal(limits.readBigUInt64BE(36), 1048576n, 'max write same length');
  const characteristics = await h.good(inquiry(1, 0xb1));
  assert.deepEqual([...characteristics.subarray(0, 6)], [0, 0xb1, 0, 0x3c, 0x00, 0x01]);
  assert.deepEqual([...(await h.good(inquiry(1, 0xb2)))], [0, 0xb2, 0, 4, 0, 0xe4, 0x02, 0]);
});

test('VPD 83h: NAA 6 and T10 ids of the LU, target port designators, target name', async () => {
  const h = await harness();
  const page = await h.good(inquiry(1, 0x83));
  assert.deepEqual([...page.subarray(0, 2)], [0, 0x83]);
  assert.equal(page.readUInt16BE(2), page.length - 4);
  const found: Array<{ head: number[]; value: Buffer }> = [];
  for (let at = 4; at < page.length; ) {
    const length = page[at + 3];
    found.push({ head: [page[at], page[at + 1]], value: page.subarray(at + 4, at + 4 + length) });
    at += 4 + length;
  }
  assert.deepEqual(
    found.map((d) => d.head),
    [
      [0x01, 0x03],
      [0x02, 0x01],
      [0x51, 0x94],
      [0x51, 0x95],
      [0x53, 0x98],
      [0x53, 0xa8],
    ],
  );
  assert.deepEqual(found[0].value, naaIdentifier('vol-test-0001'));
  assert.equal(found[0].value[0] >> 4, 6);
  assert.equal(found[1].value.toString('ascii'), 'TRIREME vol-test-0001');
  assert.deepEqual([...found[2].value], [0, 0, 0, 1]);
  assert.deepEqual([...found[3].value], [0, 0, 0, 1]);
  assert.equal(found[4].value.toString('utf8').replace(/\0+$/, ''), `${IQN},t,0x0001`);
  assert.equal(found[5].value.toString('utf8').replace(/\0+$/, ''), IQN);
  assert.equal(found[5].value.length % 4, 0);
  // Stable: the same device id gives the same NAA on another target.
  const again = await harness(new MemoryDevice({ size: 1 << 20, id: 'vol-test-0001' }));
  assert.deepEqual((await again.good(inquiry(1, 0x83))).subarray(8, 24), found[0].value);
  assert.notDeepEqual(naaIdentifier('vol-test-0002'), found[0].value);
});

test('a LUN the target does not have: INQUIRY PQ 011b, REQUEST SENSE and others LOGICAL UNIT NOT SUPPORTED', async () => {
  const h = await harness();
  const data = await h.good(inquiry(0, 0), { lun: 5 });
  assert.equal(data[0], 0x7f);
  assertCheck(await h.run(inquiry(1, 0x80), { lun: 5 }), 0x5, 0x24, 0x00);
  const sense = await h.good([0x03, 0, 0, 0, 252, 0], { lun: 5 });
  assert.deepEqual([sense[2], sense[12], sense[13]], [0x05, 0x25, 0x00]);
  assertCheck(await h.run([0, 0, 0, 0, 0, 0], { lun: 5 }), 0x5, 0x25, 0x00);
  assertCheck(await h.run([0x28, 0, 0, 0, 0, 0, 0, 0, 1, 0], { lun: 5 }), 0x5, 0x25, 0x00);
  const luns = await h.good([0xa0, 0, 0, 0, 0, 0, 0, 0, 0, 64, 0, 0], { lun: 5 });
  assert.deepEqual([...luns], [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
});

test('REPORT LUNS: select report 0, 1, 2; bad select and short allocation refused', async () => {
  const h = await harness();
  const report = (select: number, allocation = 64) => [0xa0, 0, select, 0, 0, 0, 0, 0, 0, allocation, 0, 0];
  const lun0 = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
  assert.deepEqual([...(await h.good(report(0)))], lun0);
  assert.deepEqual([...(await h.good(report(2)))], lun0);
  assert.deepEqual([...(await h.good(report(1)))], [0, 0, 0, 0, 0, 0, 0, 0]);
  assertCheck(await h.run(report(3)), 0x5, 0x24, 0x00);
  assertCheck(await h.run(report(0, 15)), 0x5, 0x24, 0x00);
  assert.deepEqual([...(await h.good(report(0, 16)))], lun0);
});

test('READ CAPACITY(10) and (16) report size, block length, LBPME and LBPRZ', async () => {
  const h = await harness();
  assert.deepEqual([...(await h.good([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]))], [0, 0x01, 0xff, 0xff, 0, 0, 0x02, 0x00]);
  assertCheck(await h.run([0x25, 0, 0, 0, 0, 1, 0, 0, 0, 0]), 0x5, 0x24, 0x00);
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x9e;
  cdb[1] = 0x10;
  cdb.writeUInt32BE(32, 10);
  const data = await h.good(cdb);
  assert.equal(data.length, 32);
  assert.equal(data.readBigUInt64BE(0), BigInt(64 * 2048 - 1));
  assert.equal(data.readUInt32BE(8), 512);
  assert.deepEqual([data[12], data[13], data[14], data[15]], [0, 3, 0xc0, 0]);
  cdb.writeUInt32BE(12, 10);
  assert.equal((await h.good(cdb)).length, 12);
  cdb[1] = 0x11;
  assertCheck(await h.run(cdb), 0x5, 0x24, 0x00);
});

test('a big device reports FFFFFFFFh in READ CAPACITY(10)', async () => {
  const device = new MemoryDevice({ size: 4 * 1024 * 1024 * 1024 * 1024, blockSize: 512, id: 'big' });
  const h = await harness(device);
  assert.deepEqual([...(await h.good([0x25, 0, 0, 0, 0, 0, 0, 0, 0, 0]))], [0xff, 0xff, 0xff, 0xff, 0, 0, 0x02, 0]);
  assert.equal(A.portalGroupTag, 1);
});
