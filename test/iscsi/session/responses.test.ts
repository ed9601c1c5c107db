import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ScsiStatus } from '../../../src/iscsi/scsi/types';
import { residualOf, responsePdus, type CompletedCommand } from '../../../src/iscsi/session/responses';

const seq = { statSN: 100, expCmdSN: 5, maxCmdSN: 68 };
const read = (edtl: number): CompletedCommand => ({ itt: 1, lun: 0, read: true, write: false, expectedDataTransferLength: edtl, r2tCount: 0 });
const limits = { maxSegment: 4096, maxBurstLength: 8192 };
const built = (cmd: CompletedCommand, result: Parameters<typeof responsePdus>[1]) => responsePdus(cmd, result, limits).map((p) => ({ status: p.status, pdu: p.build(seq) }));
const SENSE = Buffer.from([0x70, 0, 0x03, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x11, 0, 0, 0, 0, 0]);

test('residuals: overflow, underflow, exact', () => {
  assert.deepEqual(residualOf(512, 1024), { overflow: true, underflow: false, count: 512 });
  assert.deepEqual(residualOf(1024, 512), { overflow: false, underflow: true, count: 512 });
  assert.deepEqual(residualOf(512, 512), { overflow: false, underflow: false, count: 0 });
});

test('a good read collapses status into the last Data-In; F marks each burst end', () => {
  const pdus = built(read(16384), { status: ScsiStatus.Good, dataIn: Buffer.alloc(16384, 7) });
  assert.equal(pdus.length, 4);
  assert.deepEqual(pdus.map((p) => p.status), [false, false, false, true]);
  assert.deepEqual(pdus.map((p) => p.pdu.bhs[1] & 0x81), [0x00, 0x80, 0x00, 0x81]);
  assert.deepEqual(pdus.map((p) => p.pdu.bhs.readUInt32BE(40)), [0, 4096, 8192, 12288]);
});

test('more data than expected is cut to EDTL and reported as overflow', () => {
  const pdus = built(read(1000), { status: ScsiStatus.Good, dataIn: Buffer.alloc(4096) });
  assert.equal(pdus.length, 1);
  assert.equal(pdus[0].pdu.data?.length, 1000);
  assert.equal(pdus[0].pdu.bhs[1] & 0x06, 0x04);
  assert.equal(pdus[0].pdu.bhs.readUInt32BE(44), 3096);
});

test('CHECK CONDITION never rides on Data-In: data first, then a SCSI Response with sense', () => {
  const pdus = built(read(8192), { status: ScsiStatus.CheckCondition, sense: SENSE, dataIn: Buffer.alloc(4096) });
  assert.equal(pdus.length, 2);
  assert.equal(pdus[0].pdu.bhs[0], 0x25);
  assert.equal(pdus[0].pdu.bhs[1] & 0x01, 0, 'no S bit');
  assert.equal(pdus[1].pdu.bhs[0], 0x21);
  assert.equal(pdus[1].pdu.bhs[3], ScsiStatus.CheckCondition);
  assert.equal(pdus[1].pdu.bhs.readUInt32BE(36), 1, 'ExpDataSN counts the Data-In PDUs');
  assert.equal(pdus[1].pdu.data?.readUInt16BE(0), SENSE.length);
  assert.equal(pdus[1].pdu.bhs.readUInt32BE(44), 4096, 'underflow residual');
});

test('a read that returns nothing reports the whole EDTL as underflow', () => {
  const [only] = built(read(4096), { status: ScsiStatus.CheckCondition, sense: SENSE });
  assert.equal(only.pdu.bhs[0], 0x21);
  assert.equal(only.pdu.bhs[1] & 0x06, 0x02);
  assert.equal(only.pdu.bhs.readUInt32BE(44), 4096);
});

test('write residuals follow the Data-Out length the CDB called for', () => {
  const write: CompletedCommand = { itt: 2, lun: 0, read: false, write: true, expectedDataTransferLength: 1024, r2tCount: 3 };
  const [under] = built(write, { status: ScsiStatus.Good, dataOutLength: 512 });
  assert.equal(under.pdu.bhs[1] & 0x06, 0x02);
  assert.equal(under.pdu.bhs.readUInt32BE(44), 512);
  assert.equal(under.pdu.bhs.readUInt32BE(36), 3, 'ExpDataSN counts the R2Ts');
  const [over] = built(write, { status: ScsiStatus.Good, dataOutLength: 2048 });
  assert.equal(over.pdu.bhs[1] & 0x06, 0x04);
  assert.equal(over.pdu.bhs.readUInt32BE(44), 1024);
  const [exact] = built(write, { status: ScsiStatus.Good });
  assert.equal(exact.pdu.bhs[1] & 0x06, 0);
});
