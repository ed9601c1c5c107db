import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, truncateSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { BlockDevice } from '../../../src/iscsi/block-device';
import { FileDevice } from '../../../src/iscsi/device/file-device';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';

const dir = mkdtempSync(join(tmpdir(), 'trireme-devices-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const SIZE = 8 * 1024 * 1024;
const factories: Record<string, () => Promise<BlockDevice & { resize(n: number): unknown }>> = {
  memory: async () => new MemoryDevice({ size: SIZE, blockSize: 512 }),
  file: async () => FileDevice.open(join(dir, `dev-${Math.random().toString(16).slice(2)}.img`), { size: SIZE }),
  // The same file device with every request on libuv's thread pool, the path taken after a slow synchronous call.
  'file (thread pool)': async () => FileDevice.open(join(dir, `dev-${Math.random().toString(16).slice(2)}.img`), { size: SIZE, syncMaxBytes: 0 }),
};

// One conformance suite run by every BlockDevice implementation.
for (const [name, make] of Object.entries(factories)) {
  describe(`${name} device`, () => {
    test('never-written blocks read as zeros', async () => {
      const device = await make();
      assert.deepEqual(await device.read(4096, 8192), Buffer.alloc(8192));
      await device.close();
    });

    test('writes read back, across chunk boundaries', async () => {
      const device = await make();
      const data = Buffer.alloc(200 * 1024, 0xab);
      data.writeUInt32BE(0xdeadbeef, 0);
      await device.write(60 * 1024, data);
      assert.deepEqual(await device.read(60 * 1024, data.length), data);
      assert.deepEqual(await device.read(60 * 1024 - 512, 512), Buffer.alloc(512));
      await device.write(0, Buffer.alloc(512, 1), { fua: true });
      await device.flush();
      assert.deepEqual(await device.read(0, 512), Buffer.alloc(512, 1));
      await device.close();
    });

    test('unmap zeroes small and large ranges', async () => {
      const device = await make();
      await device.write(0, Buffer.alloc(3 * 1024 * 1024, 7));
      await device.unmap(512, 1024);
      await device.unmap(1024 * 1024, 2 * 1024 * 1024);
      const all = await device.read(0, 3 * 1024 * 1024);
      assert.equal(all[0], 7);
      assert.deepEqual(all.subarray(512, 1536), Buffer.alloc(1024));
      assert.equal(all[1536], 7);
      assert.ok(all.subarray(1024 * 1024).equals(Buffer.alloc(2 * 1024 * 1024)));
      await device.close();
    });

    test('misaligned and out-of-range requests are refused with a code', async () => {
      const device = await make();
      await assert.rejects(device.read(1, 512), { code: 'ERR_DEVICE_IO' });
      await assert.rejects(device.write(0, Buffer.alloc(100)), { code: 'ERR_DEVICE_IO' });
      await assert.rejects(device.read(SIZE - 512, 1024), { code: 'ERR_DEVICE_IO' });
      await device.close();
    });

    test('resize grows the device and notifies listeners', async () => {
      const device = await make();
      const seen: number[] = [];
      const off = device.onResize((n) => seen.push(n));
      await device.resize(SIZE * 2);
      off();
      assert.equal(device.size(), SIZE * 2);
      assert.deepEqual(seen, [SIZE * 2]);
      await device.write(SIZE * 2 - 512, Buffer.alloc(512, 9));
      assert.deepEqual(await device.read(SIZE * 2 - 512, 512), Buffer.alloc(512, 9));
      await device.close();
    });
  });
}

test('a file device is created sparse and keeps its data across reopen', async () => {
  const path = join(dir, 'persist.img');
  const first = await FileDevice.open(path, { size: SIZE });
  await first.write(SIZE - 4096, Buffer.alloc(4096, 0x5a), { fua: true });
  const id = first.id;
  await first.close();
  assert.ok(statSync(path).blocks * 512 < SIZE, 'file should be sparse');
  const second = await FileDevice.open(path);
  assert.equal(second.size(), SIZE);
  assert.equal(second.id, id);
  assert.deepEqual(await second.read(SIZE - 4096, 4096), Buffer.alloc(4096, 0x5a));
  await second.close();
});

test('memory device allocates only what is written', async () => {
  const device = new MemoryDevice({ size: 1024 ** 3 });
  await device.write(0, Buffer.alloc(4096, 1));
  assert.equal(device.allocatedBytes(), 64 * 1024);
  await device.unmap(0, 64 * 1024);
  assert.equal(device.allocatedBytes(), 0);
});

for (const [mode, syncMaxBytes] of [['synchronous', 64 * 1024], ['thread pool', 0]] as const) {
  test(`a file truncated behind the device reads as zeros past its end (${mode})`, async () => {
    const path = join(dir, `short-${mode.replace(' ', '-')}.img`);
    const device = await FileDevice.open(path, { size: SIZE, syncMaxBytes });
    // Fill first, so stale bytes would show if the read buffer were returned unzeroed.
    await device.write(0, Buffer.alloc(64 * 1024, 0xee));
    truncateSync(path, 6 * 1024);
    const got = await device.read(4096, 8192);
    assert.deepEqual(got.subarray(0, 2048), Buffer.alloc(2048, 0xee));
    assert.deepEqual(got.subarray(2048), Buffer.alloc(6144));
    assert.deepEqual(await device.read(32 * 1024, 4096), Buffer.alloc(4096));
    await device.close();
  });
}

test('a file device serves small requests synchronously and large ones on the thread pool', async () => {
  const device = await FileDevice.open(join(dir, 'gate.img'), { size: SIZE });
  await device.write(0, Buffer.alloc(4096, 1));
  await device.read(0, 4096);
  await device.read(0, 128 * 1024);
  assert.deepEqual(device.ioCounts(), { sync: 2, async: 1 });
  await device.close();
});

test('a stalled synchronous call moves the file device to the thread pool', async () => {
  // Any call counts as stalled with a negative threshold: the first runs synchronously, the rest go to the pool.
  const device = await FileDevice.open(join(dir, 'slow.img'), { size: SIZE, stallMs: -1 });
  await device.write(0, Buffer.alloc(4096, 3));
  for (let i = 0; i < 3; i++) assert.deepEqual(await device.read(0, 4096), Buffer.alloc(4096, 3));
  assert.deepEqual(device.ioCounts(), { sync: 1, async: 3 });
  await device.close();
});

test('a read that misses the page cache moves the file device to the thread pool', async () => {
  const path = join(dir, 'cold.img');
  // suspectMs 0: every synchronous call checks the process's block reads, however fast the disk;
  // blockedBurstMs 0: the first read from storage is one too many.
  const device = await FileDevice.open(path, { size: SIZE, suspectMs: 0, blockedBurstMs: 0 });
  await device.write(0, Buffer.alloc(1024 * 1024, 4), { fua: true });
  assert.deepEqual(await device.read(4096, 4096), Buffer.alloc(4096, 4));
  assert.deepEqual(device.ioCounts(), { sync: 1, async: 1 }, 'cached data is read synchronously (the 1 MiB write went to the pool)');
  // GNU dd's nocache flag asks the kernel to drop the file's (clean) pages from the page cache.
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  assert.deepEqual(await device.read(512 * 1024, 4096), Buffer.alloc(4096, 4));
  assert.deepEqual(await device.read(8192, 4096), Buffer.alloc(4096, 4));
  assert.deepEqual(device.ioCounts(), { sync: 2, async: 2 }, 'after a read from the disk the next goes to the pool');
  await device.close();
});

test('occasional reads from storage keep the file device synchronous', async () => {
  const path = join(dir, 'warmish.img');
  // The default burst allowance (100 ms) absorbs one cold read.
  const device = await FileDevice.open(path, { size: SIZE, suspectMs: 0 });
  await device.write(0, Buffer.alloc(1024 * 1024, 6), { fua: true });
  execFileSync('dd', [`if=${path}`, 'iflag=nocache', 'count=0'], { stdio: 'ignore' });
  assert.deepEqual(await device.read(512 * 1024, 4096), Buffer.alloc(4096, 6));
  assert.deepEqual(await device.read(8192, 4096), Buffer.alloc(4096, 6));
  assert.deepEqual(device.ioCounts(), { sync: 2, async: 1 });
  await device.close();
});

test('holds in quick succession grow: a disk that keeps stalling is probed ever more rarely', async () => {
  // Every synchronous call counts as stalled; holds start at 400 ms. Each sleep ends 40 ms after the
  // point that matters and leaves 360 ms for a late timer on a busy machine.
  const device = await FileDevice.open(join(dir, 'backoff.img'), { size: SIZE, stallMs: -1, asyncHoldMs: 400 });
  await device.read(0, 4096);
  await sleep(440);
  // The first hold is over: this call runs synchronously, stalls again within 400 ms of the
  // hold's end, and so starts a hold of 800 ms.
  await device.read(0, 4096);
  assert.deepEqual(device.ioCounts(), { sync: 2, async: 0 });
  await sleep(440);
  // A 400 ms hold would be over by now; the doubled one is not.
  await device.read(0, 4096);
  assert.deepEqual(device.ioCounts(), { sync: 2, async: 1 });
  await device.close();
});
