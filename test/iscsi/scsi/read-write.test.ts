import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { BlockDeviceError } from '../../../src/iscsi/block-device';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { assertCheck, cdb10, cdb16, deviceFactories, harness, pattern } from './harness';

const dir = mkdtempSync(join(tmpdir(), 'trireme-scsi-rw-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const BLOCKS = (16 * 1024 * 1024) / 512;

function cdb6(opcode: number, lba: number, length: number): number[] {
  return [opcode, (lba >> 16) & 0x1f, (lba >> 8) & 0xff, lba & 0xff, length, 0];
}

function cdb12(opcode: number, lba: number, length: number, byte1 = 0): Buffer {
  const cdb = Buffer.alloc(12);
  cdb[0] = opcode;
  cdb[1] = byte1;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt32BE(length, 6);
  return cdb;
}

const SIZES: Array<{ name: string; read: (lba: number, n: number) => number[] | Buffer; write: (lba: number, n: number) => number[] | Buffer }> = [
  { name: '6', read: (l, n) => cdb6(0x08, l, n), write: (l, n) => cdb6(0x0a, l, n) },
  { name: '10', read: (l, n) => cdb10(0x28, l, n), write: (l, n) => cdb10(0x2a, l, n) },
  { name: '12', read: (l, n) => cdb12(0xa8, l, n), write: (l, n) => cdb12(0xaa, l, n) },
  { name: '16', read: (l, n) => cdb16(0x88, l, n), write: (l, n) => cdb16(0x8a, l, n) },
];

for (const [deviceName, make] of Object.entries(deviceFactories(dir))) {
  describe(`READ/WRITE on a ${deviceName} device`, () => {
    for (const size of SIZES) {
      test(`READ(${size.name})/WRITE(${size.name}) round trip, range checks, zero length`, async () => {
        const h = await harness(await make());
        const data = pattern(3 * 512, Number(size.name));
        await h.good(size.write(100, 3), { dataOut: data });
        assert.deepEqual(await h.good(size.read(100, 3)), data);
        assert.deepEqual(await h.good(size.read(99, 1)), Buffer.alloc(512));
        // Last block is addressable, one past it is not.
        const lastLba = size.name === '6' ? 0x1fffff : BLOCKS - 1;
        if (size.name !== '6') {
          await h.good(size.write(lastLba, 1), { dataOut: pattern(512, 9) });
          assert.deepEqual(await h.good(size.read(lastLba, 1)), pattern(512, 9));
          assertCheck(await h.run(size.read(lastLba, 2)), 0x5, 0x21, 0x00);
          assertCheck(await h.run(size.write(BLOCKS, 1), { dataOut: pattern(512, 1) }), 0x5, 0x21, 0x00);
          // Zero blocks transfers nothing and is not an error, but the LBA is still checked.
          assert.equal((await h.good(size.read(lastLba, 0))).length, 0);
          assertCheck(await h.run(size.read(BLOCKS, 0)), 0x5, 0x21, 0x00);
        } else {
          assertCheck(await h.run(size.read(lastLba, 1)), 0x5, 0x21, 0x00);
        }
        await h.target.close();
        await h.device.close();
      });
    }

    test('READ(6)/WRITE(6) with transfer length 0 move 256 blocks (SBC-3 §5.7)', async () => {
      const h = await harness(await make());
      const data = pattern(256 * 512, 3);
      await h.good(cdb6(0x0a, 8, 0), { dataOut: data });
      assert.deepEqual(await h.good(cdb6(0x08, 8, 0)), data);
      await h.device.close();
    });

    test('Data-Out shorter or longer than the transfer length (RFC 7143 §11.4.5.1)', async () => {
      const h = await harness(await make());
      // Whole blocks are written as far as they go; the residual tells the initiator.
      const short = await h.run(cdb10(0x2a, 0, 4), { dataOut: pattern(3 * 512, 1) });
      assert.equal(short.status, 0);
      assert.equal(short.dataOutLength, 2048, 'the transport needs it for the overflow residual');
      assert.deepEqual(await h.good(cdb10(0x28, 0, 4)), Buffer.concat([pattern(3 * 512, 1), Buffer.alloc(512)]));
      await h.good(cdb10(0x2a, 0, 1));
      // Ending inside a block: refused, nothing written.
      assertCheck(await h.run(cdb10(0x2a, 0, 2), { dataOut: Buffer.alloc(700, 9) }), 0x5, 0x0e, 0x03);
      assert.deepEqual(await h.good(cdb10(0x28, 0, 1)), pattern(512, 1));
      await h.good(cdb10(0x2a, 0, 4), { dataOut: Buffer.alloc(2048) });
      const long = await h.run(cdb10(0x2a, 0, 1), { dataOut: pattern(2048, 4) });
      assert.equal(long.status, 0);
      assert.equal(long.dataOutLength, 512);
      assert.deepEqual(await h.good(cdb10(0x28, 0, 2)), Buffer.concat([pattern(2048, 4).subarray(0, 512), Buffer.alloc(512)]));
      await h.device.close();
    });

    test('protection fields are invalid fields; DPO and FUA are accepted', async () => {
      const h = await harness(await make());
      const rdprotect = assertCheck(await h.run(cdb10(0x28, 0, 1, 0x20)), 0x5, 0x24, 0x00);
      assert.deepEqual([...rdprotect.subarray(15)], [0xcd, 0, 1]);
      // DPO and FUA are accepted.
      await h.good(cdb10(0x28, 0, 1, 0x18));
      await h.device.close();
    });
  });
}

/** A real MemoryDevice that records the options each write arrives with: FUA cannot be observed otherwise. */
class RecordingDevice extends MemoryDevice {
  readonly writes: Array<{ offset: number; fua: boolean }> = [];
  flushes = 0;

  override async write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void> {
    this.writes.push({ offset, fua: options?.fua ?? false });
    return super.write(offset, data);
  }

  override async flush(): Promise<void> {
    this.flushes += 1;
  }
}

test('transfers above MAXIMUM TRANSFER LENGTH (32 MiB) are invalid fields', async () => {
  const h = await harness(new MemoryDevice({ size: 64 * 1024 * 1024, id: 'big' }));
  const sense = assertCheck(await h.run(cdb16(0x88, 0, 65537)), 0x5, 0x24, 0x00);
  assert.deepEqual([...sense.subarray(15)], [0xc0, 0, 10]);
  assert.equal((await h.good(cdb16(0x88, 0, 65536))).length, 32 * 1024 * 1024);
});

test('FUA reaches the device; WRITE(6) has no FUA bit', async () => {
  const device = new RecordingDevice({ size: 1 << 20, id: 'rec' });
  const h = await harness(device);
  await h.good(cdb10(0x2a, 0, 1, 0x08), { dataOut: pattern(512, 1) });
  await h.good(cdb16(0x8a, 1, 1, 0x00), { dataOut: pattern(512, 1) });
  await h.good(cdb16(0x8a, 2, 1, 0x08), { dataOut: pattern(512, 1) });
  await h.good(cdb6(0x0a, 3, 1), { dataOut: pattern(512, 1) });
  assert.deepEqual(
    device.writes.map((w) => w.fua),
    [true, false, true, false],
  );
});

test('SYNCHRONIZE CACHE(10/16) flushes; checks its range; IMMED returns at once', async () => {
  const device = new RecordingDevice({ size: 1 << 20, id: 'rec' });
  const h = await harness(device);
  await h.good(cdb10(0x35, 0, 0));
  await h.good(cdb16(0x91, 0, 2048));
  await h.good(cdb10(0x35, 0, 0, 0x02));
  assert.equal(device.flushes, 3);
  assertCheck(await h.run(cdb10(0x35, 2048, 0)), 0x5, 0x21, 0x00);
  assertCheck(await h.run(cdb16(0x91, 2000, 100)), 0x5, 0x21, 0x00);
});

/** A real MemoryDevice whose failures are switched on by the test: the only way to reach the error paths. */
class FailingDevice extends MemoryDevice {
  failure: Error | undefined;

  override async read(offset: number, length: number): Promise<Buffer> {
    if (this.failure) throw this.failure;
    return super.read(offset, length);
  }

  override async write(offset: number, data: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    return super.write(offset, data);
  }

  override async flush(): Promise<void> {
    if (this.failure) throw this.failure;
  }
}

test('device errors become sense data and the target keeps serving', async () => {
  const device = new FailingDevice({ size: 1 << 20, id: 'fail' });
  const h = await harness(device);
  device.failure = new BlockDeviceError('unavailable', 'degraded');
  assertCheck(await h.run(cdb10(0x2a, 0, 1), { dataOut: pattern(512, 1) }), 0x2, 0x04, 0x01);
  device.failure = new BlockDeviceError('no-space', 'full');
  assertCheck(await h.run(cdb10(0x2a, 0, 1), { dataOut: pattern(512, 1) }), 0x7, 0x27, 0x07);
  device.failure = new BlockDeviceError('medium', 'crc');
  assertCheck(await h.run(cdb10(0x28, 0, 1)), 0x3, 0x11, 0x00);
  device.failure = new Error('boom');
  assertCheck(await h.run(cdb10(0x28, 0, 1)), 0x4, 0x44, 0x00);
  // SYNCHRONIZE CACHE with IMMED: GOOD now, a deferred error on the next command.
  await h.good(cdb10(0x35, 0, 0, 0x02));
  await new Promise((resolve) => setImmediate(resolve));
  device.failure = undefined;
  const deferred = await h.run([0, 0, 0, 0, 0, 0]);
  assert.equal(deferred.status, 2);
  assert.deepEqual([deferred.sense?.[0], deferred.sense?.[2], deferred.sense?.[12]], [0x71, 0x04, 0x44]);
  await h.good([0, 0, 0, 0, 0, 0]);
  await h.good(cdb10(0x2a, 0, 1), { dataOut: pattern(512, 1) });
  const metrics = await h.registry.getSingleMetricAsString('trireme_scsi_errors_total');
  assert.match(metrics, /sense_key="not_ready"} 1/);
  assert.match(metrics, /sense_key="hardware_error"} 2/);
});

