import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { ASC, ScsiError, buildSense, deviceErrorToScsi, invalidFieldInCdb, invalidFieldInParameterList, miscompare } from '../../../src/iscsi/scsi/sense';

test('fixed-format sense data is 18 bytes with key, ASC and ASCQ in place (SPC-4 §4.5.3)', () => {
  assert.deepEqual([...buildSense(0x6, ASC.PowerOnResetOccurred)], [0x70, 0, 0x06, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x29, 0x00, 0, 0, 0, 0]);
  assert.deepEqual([...buildSense(0x3, ASC.UnrecoveredReadError, { deferred: true })], [0x71, 0, 0x03, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x11, 0x00, 0, 0, 0, 0]);
});

test('field pointers name CDB or parameter bytes and bits', () => {
  assert.deepEqual([...invalidFieldInCdb(2, 5).sense()], [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xcd, 0x00, 0x02]);
  assert.deepEqual([...invalidFieldInCdb(7).sense()], [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x24, 0x00, 0, 0xc0, 0x00, 0x07]);
  assert.deepEqual([...invalidFieldInParameterList(300, 0).sense()], [0x70, 0, 0x05, 0, 0, 0, 0, 0x0a, 0, 0, 0, 0, 0x26, 0x00, 0, 0x88, 0x01, 0x2c]);
});

test('MISCOMPARE carries the offset in INFORMATION with VALID set', () => {
  assert.deepEqual([...miscompare(0x1234).sense()], [0xf0, 0, 0x0e, 0, 0, 0x12, 0x34, 0x0a, 0, 0, 0, 0, 0x1d, 0x00, 0, 0, 0, 0]);
});

test('device failures map to one sense each', () => {
  const table: Array<[BlockDeviceError | Error, number, number, number, string]> = [
    [new BlockDeviceError('unavailable', 'degraded'), 0x2, 0x04, 0x01, 'ERR_SCSI_NOT_READY'],
    [new BlockDeviceError('no-space', 'full'), 0x7, 0x27, 0x07, 'ERR_SCSI_DATA_PROTECT'],
    [new BlockDeviceError('medium', 'crc'), 0x3, 0x11, 0x00, 'ERR_SCSI_MEDIUM_ERROR'],
    [new BlockDeviceError('io', 'eio'), 0x4, 0x44, 0x00, 'ERR_SCSI_HARDWARE_ERROR'],
    [new Error('anything else'), 0x4, 0x44, 0x00, 'ERR_SCSI_HARDWARE_ERROR'],
  ];
  for (const [err, key, asc, ascq, code] of table) {
    const mapped = deviceErrorToScsi(err);
    assert.ok(mapped instanceof ScsiError);
    assert.deepEqual([mapped.key, mapped.asc, mapped.ascq, mapped.code], [key, asc, ascq, code]);
    assert.equal(mapped.cause, err);
  }
  const own = invalidFieldInCdb(1);
  assert.equal(deviceErrorToScsi(own), own);
});
