import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { assertCheck, cdb10, cdb16, harness, pattern } from './harness';

// Each test is named for a failure iscsi-test-cu (libiscsi 1.19) found against `trireme target`.

test('regression Write10Residuals: WRITE(10) of one block with no Data-Out is GOOD, writes nothing, reports 512 bytes for the residual', async () => {
  const h = await harness();
  await h.good(cdb10(0x2a, 0, 1), { dataOut: pattern(512, 1) });
  const result = await h.run(cdb10(0x2a, 0, 1), { dataOut: Buffer.alloc(0) });
  assert.equal(result.status, 0);
  assert.equal(result.dataOutLength, 512);
  assert.deepEqual(await h.good(cdb10(0x28, 0, 1)), pattern(512, 1));
});

test('regression CompareAndWrite.Simple: 256 blocks wraps NUMBER OF LOGICAL BLOCKS to 0; with Data-Out that is an invalid field', async () => {
  const h = await harness();
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x89;
  cdb[13] = 0;
  assertCheck(await h.run(cdb, { dataOut: Buffer.alloc(2 * 256 * 512) }), 0x5, 0x24, 0x00);
});

test('regression CompareAndWrite.InvalidDataOutSize: Data-Out larger than 2 x blocks is refused, not compared', async () => {
  const h = await harness();
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x89;
  cdb[13] = 1;
  assertCheck(await h.run(cdb, { dataOut: Buffer.alloc(4 * 512, 0xa6) }), 0x5, 0x24, 0x00);
});

test('regression WriteSame10.InvalidDataOutSize: WRITE SAME needs exactly one block of Data-Out', async () => {
  const h = await harness();
  assertCheck(await h.run(cdb10(0x41, 0, 1, 0x08), { dataOut: Buffer.alloc(256) }), 0x5, 0x24, 0x00);
  assertCheck(await h.run(cdb10(0x41, 0, 1, 0x08), { dataOut: Buffer.alloc(1024) }), 0x5, 0x24, 0x00);
});

test('regression Inquiry.BlockLimits: MAXIMUM UNMAP LBA COUNT is at most 2^20 blocks', async () => {
  const h = await harness();
  const page = await h.good([0x12, 1, 0xb0, 0, 64, 0]);
  assert.ok(page.readUInt32BE(20) <= 1024 * 1024);
});

test('regression WriteSame16.Unmap: a 65536-block WRITE(16) fits MAXIMUM TRANSFER LENGTH on 512-byte blocks', async () => {
  const h = await harness(new MemoryDevice({ size: 64 * 1024 * 1024, id: 'big' }));
  const data = Buffer.alloc(65536 * 512, 0xff);
  await h.good(cdb16(0x8a, 0, 65536), { dataOut: data });
  await h.good(cdb16(0x93, 0, 65536, 0x08), { dataOut: Buffer.alloc(512) });
  assert.deepEqual(await h.good(cdb16(0x88, 0, 65536)), Buffer.alloc(65536 * 512));
});
