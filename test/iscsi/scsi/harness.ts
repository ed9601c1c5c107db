import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/common/logger';
import type { BlockDevice } from '../../../src/iscsi/block-device';
import { FileDevice } from '../../../src/iscsi/device/file-device';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { createScsiTarget } from '../../../src/iscsi/scsi';
import type { Nexus, ScsiResult, ScsiTarget } from '../../../src/iscsi/scsi/types';

export const IQN = 'iqn.2026-01.io.trireme:test';

export function nexus(name: string, isid = '400001370000'): Nexus {
  const initiatorName = `iqn.2026-01.io.trireme:${name}`;
  return { id: `${initiatorName},i,0x${isid}`, initiatorName, isid, targetName: IQN, portalGroupTag: 1 };
}

export interface Harness {
  readonly target: ScsiTarget;
  readonly device: BlockDevice;
  readonly registry: Registry;
  /** Runs a CDB on LUN 0 (or `lun`) as `who`. */
  run(cdb: number[] | Buffer, options?: { dataOut?: Buffer; who?: Nexus; lun?: number; signal?: AbortSignal }): Promise<ScsiResult>;
  /** Runs a CDB and asserts GOOD, returning the Data-In (empty when none). */
  good(cdb: number[] | Buffer, options?: { dataOut?: Buffer; who?: Nexus; lun?: number }): Promise<Buffer>;
}

export const A = nexus('alpha');
export const B = nexus('bravo');

/**
 * A target over one device with the POWER ON unit attention already cleared
 * for the nexuses given (each sends one TEST UNIT READY).
 */
export async function harness(device: BlockDevice = new MemoryDevice({ size: 64 * 1024 * 1024, blockSize: 512, id: 'vol-test-0001' }), clear: Nexus[] = [A]): Promise<Harness> {
  const registry = new Registry();
  const target = createScsiTarget({ iqn: IQN, luns: [{ lun: 0, device }], logger: silentLogger(), registry });
  const run: Harness['run'] = (cdb, options = {}) =>
    target.execute({
      nexus: options.who ?? A,
      lun: options.lun ?? 0,
      cdb: Buffer.isBuffer(cdb) ? cdb : Buffer.from(cdb),
      dataOut: options.dataOut,
      expectedDataTransferLength: options.dataOut?.length ?? 1 << 24,
      taskAttribute: 'simple',
      signal: options.signal,
    });
  const good: Harness['good'] = async (cdb, options) => {
    const result = await run(cdb, options);
    assert.equal(result.status, 0, `expected GOOD, got status ${result.status} sense ${result.sense?.toString('hex')}`);
    return result.dataIn ?? Buffer.alloc(0);
  };
  for (const who of clear) {
    target.nexusAdded(who);
    const first = await run([0, 0, 0, 0, 0, 0], { who });
    assert.equal(first.status, 2, 'first command of a nexus reports the POWER ON unit attention');
  }
  return { target, device, registry, run, good };
}

/** Asserts CHECK CONDITION with this sense key and ASC/ASCQ; returns the sense bytes. */
export function assertCheck(result: ScsiResult, key: number, asc: number, ascq: number): Buffer {
  assert.equal(result.status, 2, `expected CHECK CONDITION, got ${result.status}`);
  const sense = result.sense;
  assert.ok(sense, 'sense data present');
  assert.equal(sense.length, 18);
  assert.equal(sense[0] & 0x7f, 0x70);
  assert.equal(sense[7], 10);
  assert.deepEqual([sense[2] & 0x0f, sense[12], sense[13]], [key, asc, ascq], `sense ${sense.toString('hex')}`);
  return sense;
}

/** Big-endian CDB fields. */
export function cdb10(opcode: number, lba: number, length: number, byte1 = 0): number[] {
  return [opcode, byte1, (lba >>> 24) & 0xff, (lba >>> 16) & 0xff, (lba >>> 8) & 0xff, lba & 0xff, 0, (length >> 8) & 0xff, length & 0xff, 0];
}

export function cdb16(opcode: number, lba: number | bigint, length: number, byte1 = 0): Buffer {
  const cdb = Buffer.alloc(16);
  cdb[0] = opcode;
  cdb[1] = byte1;
  cdb.writeBigUInt64BE(BigInt(lba), 2);
  cdb.writeUInt32BE(length, 10);
  return cdb;
}

export function pattern(bytes: number, seed: number): Buffer {
  const out = Buffer.alloc(bytes);
  for (let i = 0; i < bytes; i += 1) out[i] = (i * 31 + seed) & 0xff;
  return out;
}

/** Device factories: every table-driven test runs against each real BlockDevice. */
export function deviceFactories(dir: string, size = 16 * 1024 * 1024): Record<string, () => Promise<BlockDevice>> {
  let n = 0;
  return {
    memory: async () => new MemoryDevice({ size, blockSize: 512, id: 'vol-memory-0001' }),
    file: async () => {
      n += 1;
      return FileDevice.open(`${dir}/dev-${process.pid}-${n}.img`, { size });
    },
  };
}
