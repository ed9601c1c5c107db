import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as encode from '../../../src/iscsi/pdu/encode';
import { PduError } from '../../../src/iscsi/pdu/errors';
import { PduFramer } from '../../../src/iscsi/pdu/framer';
import { decodeLun, encodeLun } from '../../../src/iscsi/pdu/lun';
import { parsePdu, type ScsiCommandPdu, type LoginRequestPdu, type DataOutPdu } from '../../../src/iscsi/pdu/parse';
import { encodeTextPairs, parseTextPairs, splitSegments, TextAccumulator } from '../../../src/iscsi/pdu/text';
import { buildPdu, dataOut, loginRequest, read10, scsiCommand } from '../support/raw-initiator';

const frame = (bytes: Buffer) => new PduFramer({ maxDataSegmentLength: 65536, headerDigest: false, dataDigest: false }).push(bytes)[0];
const seq = { statSN: 10, expCmdSN: 20, maxCmdSN: 30 };

test('SCSI Command: flags, tags, EDTL, CDB and immediate data', () => {
  const pdu = parsePdu(frame(buildPdu(scsiCommand({ itt: 0x11223344, cmdSN: 99, cdb: read10(5, 2), write: true, edtl: 1024, final: false, data: Buffer.alloc(512, 1), lun: 300 })))) as ScsiCommandPdu;
  assert.equal(pdu.write, true);
  assert.equal(pdu.read, false);
  assert.equal(pdu.final, false);
  assert.equal(pdu.itt, 0x11223344);
  assert.equal(pdu.cmdSN, 99);
  assert.equal(pdu.expectedDataTransferLength, 1024);
  assert.equal(pdu.lun, 300);
  assert.equal(pdu.taskAttribute, 'simple');
  assert.equal(pdu.cdb[0], 0x28);
  assert.equal(pdu.data.length, 512);
});

test('SCSI Command with an Extended CDB AHS carries the whole CDB', () => {
  const ahs = Buffer.from([0, 5, 1, 0, 0xa1, 0xa2, 0xa3, 0xa4]);
  const pdu = parsePdu(frame(buildPdu({ ...scsiCommand({ itt: 1, cmdSN: 1, cdb: read10(0, 1), edtl: 0 }), ahs }))) as ScsiCommandPdu;
  assert.equal(pdu.cdb.length, 20);
  assert.deepEqual([...pdu.cdb.subarray(16)], [0xa1, 0xa2, 0xa3, 0xa4]);
});

test('malformed PDUs become PduErrors with a Reject reason, never crashes', () => {
  const cases: Buffer[] = [
    buildPdu({ ...scsiCommand({ itt: 1, cmdSN: 1, cdb: read10(0, 1), edtl: 0 }), ahs: Buffer.from([0, 40, 1, 0]) }),
    buildPdu({ ...scsiCommand({ itt: 1, cmdSN: 1, cdb: read10(0, 1), edtl: 0, data: Buffer.alloc(4) }) }),
    buildPdu({ opcode: 0x3a }),
    buildPdu({ opcode: 0x06, flags: 0 }),
    buildPdu({ opcode: 0x04, flags: 0xc0 }),
  ];
  for (const bytes of cases) {
    assert.throws(() => parsePdu(frame(bytes)), (err: unknown) => err instanceof PduError && err.rejectReason !== undefined);
  }
});

test('Login Request and Data-Out fields', () => {
  const login = parsePdu(frame(loginRequest({ csg: 0, nsg: 1, transit: true, isid: '400001370000', tsih: 5, cmdSN: 7, pairs: [['A', 'b']] }))) as LoginRequestPdu;
  assert.equal(login.csg, 0);
  assert.equal(login.nsg, 1);
  assert.equal(login.transit, true);
  assert.equal(login.isid, '400001370000');
  assert.equal(login.tsih, 5);
  assert.equal(login.cmdSN, 7);
  const out = parsePdu(frame(buildPdu(dataOut({ itt: 4, ttt: 9, dataSN: 2, offset: 8192, data: Buffer.alloc(10), final: true })))) as DataOutPdu;
  assert.equal(out.ttt, 9);
  assert.equal(out.dataSN, 2);
  assert.equal(out.bufferOffset, 8192);
  assert.equal(out.final, true);
});

test('Data-In with status carries S, residual and StatSN; without status StatSN is zero', () => {
  const withStatus = encode.dataIn({ final: true, lun: 0, itt: 5, dataSN: 3, bufferOffset: 4096, data: Buffer.alloc(8), seq, status: { status: 0, residual: { overflow: false, underflow: true, count: 100 } } });
  assert.equal(withStatus.bhs[0], 0x25);
  assert.equal(withStatus.bhs[1], 0x80 | 0x02 | 0x01);
  assert.equal(withStatus.bhs.readUInt32BE(24), 10);
  assert.equal(withStatus.bhs.readUInt32BE(36), 3);
  assert.equal(withStatus.bhs.readUInt32BE(40), 4096);
  assert.equal(withStatus.bhs.readUInt32BE(44), 100);
  const plain = encode.dataIn({ final: false, lun: 0, itt: 5, dataSN: 0, bufferOffset: 0, data: Buffer.alloc(8), seq });
  assert.equal(plain.bhs[1], 0);
  assert.equal(plain.bhs.readUInt32BE(24), 0);
  assert.equal(plain.bhs.readUInt32BE(28), 20);
});

test('SCSI Response puts SenseLength before the sense data', () => {
  const sense = Buffer.from([0x70, 0, 5, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0]);
  const pdu = encode.scsiResponse({ itt: 1, status: 2, sense, residual: { overflow: true, underflow: false, count: 7 }, seq, expDataSN: 0 });
  assert.equal(pdu.bhs[3], 2);
  assert.equal(pdu.bhs[1], 0x84);
  assert.equal(pdu.bhs.readUIntBE(5, 3), 20);
  assert.equal(pdu.data?.readUInt16BE(0), 18);
  assert.deepEqual(pdu.data?.subarray(2), sense);
});

test('frame pads data to 4 bytes and appends digests', () => {
  const parts = encode.frame(encode.nopIn({ lun: 0, itt: 1, ttt: 0xffffffff, seq, data: Buffer.from('abcde') }), { header: true, data: true });
  const bytes = Buffer.concat(parts);
  assert.equal(bytes.length, 48 + 4 + 8 + 4);
  const framer = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: true, dataDigest: true });
  const [pdu] = framer.push(bytes);
  assert.equal(pdu.data.toString(), 'abcde');
  assert.equal(pdu.dataDigestOk, true);
});

test('Reject carries the rejected header', () => {
  const header = Buffer.alloc(48, 0x77);
  const pdu = encode.reject({ reason: 0x09, header, seq });
  assert.equal(pdu.bhs[0], 0x3f);
  assert.equal(pdu.bhs[2], 0x09);
  assert.equal(pdu.bhs.readUInt32BE(16), 0xffffffff);
  assert.deepEqual(pdu.data, header);
});

test('LUN encoding round-trips peripheral and flat addressing', () => {
  for (const lun of [0, 1, 255, 256, 16383]) {
    const b = Buffer.alloc(16);
    encodeLun(lun, b);
    assert.equal(decodeLun(b), lun);
  }
});

test('text pairs: parse, encode, limits, continuation and splitting', () => {
  const pairs: Array<[string, string]> = [['HeaderDigest', 'CRC32C,None'], ['X-com.example', 'v=1']];
  assert.deepEqual(parseTextPairs(encodeTextPairs(pairs)), pairs);
  assert.throws(() => parseTextPairs(Buffer.from('novalue\0')), PduError);
  assert.throws(() => parseTextPairs(Buffer.from(`${'K'.repeat(64)}=1\0`)), PduError);
  assert.throws(() => parseTextPairs(Buffer.from(`K=${'v'.repeat(9000)}\0`)), PduError);
  const acc = new TextAccumulator(10);
  acc.add(Buffer.from('A=1'));
  assert.throws(() => acc.add(Buffer.alloc(8)), PduError);
  assert.deepEqual(splitSegments(Buffer.alloc(10), 4).map((b) => b.length), [4, 4, 2]);
});
