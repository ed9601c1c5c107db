import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { assertCheck, cdb10, cdb16, deviceFactories, harness, pattern } from './harness';

const dir = mkdtempSync(join(tmpdir(), 'trireme-scsi-vp-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function unmapList(descriptors: Array<[number, number]>, declared?: number): Buffer {
  const list = Buffer.alloc(8 + descriptors.length * 16);
  list.writeUInt16BE(list.length - 2, 0);
  list.writeUInt16BE(declared ?? descriptors.length * 16, 2);
  descriptors.forEach(([lba, count], i) => {
    list.writeBigUInt64BE(BigInt(lba), 8 + i * 16);
    list.writeUInt32BE(count, 16 + i * 16);
  });
  return list;
}

function unmapCdb(length: number, anchor = 0): number[] {
  return [0x42, anchor, 0, 0, 0, 0, 0, length >> 8, length & 0xff, 0];
}

for (const [deviceName, make] of Object.entries(deviceFactories(dir))) {
  describe(`verify and provisioning on a ${deviceName} device`, () => {
    test('VERIFY: BYTCHK 0 checks range, 1 compares, 3 compares one block with each', async () => {
      const h = await harness(await make());
      const data = pattern(4 * 512, 7);
      await h.good(cdb10(0x2a, 40, 4), { dataOut: data });
      await h.good(cdb10(0x2f, 40, 4));
      await h.good(cdb16(0x8f, 0, 32768));
      assertCheck(await h.run(cdb10(0x2f, 32767, 2)), 0x5, 0x21, 0x00);
      await h.good(cdb10(0x2f, 40, 4, 0x02), { dataOut: data });
      const changed = Buffer.from(data);
      changed[1500] ^= 0xff;
      const sense = assertCheck(await h.run(cdb16(0x8f, 40, 4, 0x02), { dataOut: changed }), 0xe, 0x1d, 0x00);
      assert.equal(sense[0], 0xf0);
      assert.equal(sense.readUInt32BE(3), 1500);
      await h.good(cdb10(0x2f, 100, 8, 0x06), { dataOut: Buffer.alloc(512) });
      await h.good(cdb10(0x2a, 105, 1), { dataOut: pattern(512, 1) });
      const one = assertCheck(await h.run(cdb10(0x2f, 100, 8, 0x06), { dataOut: Buffer.alloc(512) }), 0xe, 0x1d, 0x00);
      assert.equal(one.readUInt32BE(3), 5 * 512 + pattern(512, 1).findIndex((b) => b !== 0));
      assertCheck(await h.run(cdb10(0x2f, 100, 8, 0x04)), 0x5, 0x24, 0x00);
      await h.device.close();
    });

    test('WRITE AND VERIFY writes, with BYTCHK 1 compares, refuses BYTCHK 2', async () => {
      const h = await harness(await make());
      const data = pattern(2 * 512, 11);
      await h.good(cdb10(0x2e, 10, 2, 0x02), { dataOut: data });
      await h.good(cdb16(0x8e, 20, 2), { dataOut: data });
      assert.deepEqual(await h.good(cdb10(0x28, 10, 2)), data);
      assert.deepEqual(await h.good(cdb10(0x28, 20, 2)), data);
      assertCheck(await h.run(cdb10(0x2e, 10, 2, 0x04), { dataOut: data }), 0x5, 0x24, 0x00);
      await h.device.close();
    });

    test('WRITE SAME fills, with UNMAP deallocates, NDOB needs no data, ANCHOR and zero length refused', async () => {
      const h = await harness(await make());
      const block = pattern(512, 5);
      await h.good(cdb10(0x41, 1000, 300), { dataOut: block });
      const filled = await h.good(cdb10(0x28, 1000, 300));
      for (let i = 0; i < 300; i += 1) assert.deepEqual(filled.subarray(i * 512, (i + 1) * 512), block);
      await h.good(cdb16(0x93, 1000, 100, 0x08), { dataOut: Buffer.alloc(512) });
      assert.deepEqual(await h.good(cdb10(0x28, 1000, 100)), Buffer.alloc(100 * 512));
      assert.deepEqual(await h.good(cdb10(0x28, 1100, 1)), block);
      await h.good(cdb16(0x93, 1100, 50, 0x09));
      assert.deepEqual(await h.good(cdb10(0x28, 1100, 50)), Buffer.alloc(50 * 512));
      // UNMAP with a non-zero block still writes the block.
      await h.good(cdb10(0x41, 1200, 2, 0x08), { dataOut: block });
      assert.deepEqual(await h.good(cdb10(0x28, 1201, 1)), block);
      const anchor = assertCheck(await h.run(cdb10(0x41, 0, 1, 0x10), { dataOut: block }), 0x5, 0x24, 0x00);
      assert.deepEqual([...anchor.subarray(15)], [0xcc, 0, 1]);
      assertCheck(await h.run(cdb10(0x41, 0, 0), { dataOut: block }), 0x5, 0x24, 0x00);
      assertCheck(await h.run(cdb16(0x93, 32760, 9), { dataOut: block }), 0x5, 0x21, 0x00);
      // Exactly one block of Data-Out, none with NDOB.
      assertCheck(await h.run(cdb10(0x41, 0, 1)), 0x5, 0x24, 0x00);
      assertCheck(await h.run(cdb10(0x41, 0, 1, 0x08), { dataOut: Buffer.alloc(256) }), 0x5, 0x24, 0x00);
      assertCheck(await h.run(cdb10(0x41, 0, 1, 0x08), { dataOut: Buffer.alloc(1024) }), 0x5, 0x24, 0x00);
      assertCheck(await h.run(cdb16(0x93, 0, 1, 0x09), { dataOut: Buffer.alloc(512) }), 0x5, 0x24, 0x00);
      assert.equal((await h.run(cdb16(0x93, 0, 1, 0x09))).dataOutLength, 0);
      assert.equal((await h.run(cdb10(0x41, 0, 1), { dataOut: block })).dataOutLength, 512);
      await h.device.close();
    });

    test('UNMAP deallocates every descriptor and validates the whole list first', async () => {
      const h = await harness(await make());
      await h.good(cdb10(0x41, 0, 4096), { dataOut: pattern(512, 3) });
      const list = unmapList([
        [0, 8],
        [100, 28],
        [4000, 0],
      ]);
      await h.good(unmapCdb(list.length), { dataOut: list });
      assert.deepEqual(await h.good(cdb10(0x28, 0, 8)), Buffer.alloc(8 * 512));
      assert.deepEqual(await h.good(cdb10(0x28, 100, 28)), Buffer.alloc(28 * 512));
      assert.deepEqual(await h.good(cdb10(0x28, 8, 1)), pattern(512, 3));
      // One bad descriptor: nothing is unmapped.
      const bad = unmapList([
        [200, 8],
        [32767, 2],
      ]);
      assertCheck(await h.run(unmapCdb(bad.length), { dataOut: bad }), 0x5, 0x21, 0x00);
      assert.deepEqual(await h.good(cdb10(0x28, 200, 1)), pattern(512, 3));
      const many = unmapList(Array.from({ length: 65 }, (_, i): [number, number] => [i * 8, 1]));
      const sense = assertCheck(await h.run(unmapCdb(many.length), { dataOut: many }), 0x5, 0x26, 0x00);
      assert.deepEqual([...sense.subarray(15)], [0x80, 0, 2]);
      assertCheck(await h.run(unmapCdb(6), { dataOut: Buffer.alloc(6) }), 0x5, 0x1a, 0x00);
      assertCheck(await h.run(unmapCdb(24), { dataOut: Buffer.alloc(8) }), 0x5, 0x1a, 0x00);
      assertCheck(await h.run(unmapCdb(24, 1), { dataOut: list }), 0x5, 0x24, 0x00);
      await h.good(unmapCdb(0));
      // A trailing partial descriptor is ignored.
      const partial = Buffer.concat([unmapList([[300, 1]], 24), Buffer.alloc(8)]);
      await h.good(unmapCdb(partial.length), { dataOut: partial });
      assert.deepEqual(await h.good(cdb10(0x28, 300, 1)), Buffer.alloc(512));
      await h.device.close();
    });
  });
}
