import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from '../support/host-tools';
import { startTarget, type RunningTarget } from './support/target';

const run = promisify(execFile);
const QEMU = { 'qemu-io': 'qemu-utils', 'qemu-img': 'qemu-utils' };
const MiB = 1024 * 1024;

let target: RunningTarget;
let dir: string;

before(async () => {
  target = await startTarget({ size: 64 * MiB });
  dir = await mkdtemp(join(tmpdir(), 'trireme-qemu-'));
});

after(async () => {
  await target.close();
  await rm(dir, { recursive: true, force: true });
});

test('qemu-io writes patterns and reads them back', async (t) => {
  if (!requireTools(t, QEMU)) return;
  const { stdout } = await run('qemu-io', [
    '-f', 'raw',
    '-c', 'write -P 0xab 0 1M',
    '-c', 'write -P 0xcd 1M 3M',
    '-c', 'write -P 0x11 7680 512',
    '-c', 'read -P 0xab 0 7680',
    '-c', 'read -P 0x11 7680 512',
    '-c', 'read -P 0xcd 1M 3M',
    '-c', 'read -P 0 4M 1M',
    target.url(),
  ], { timeout: 60_000 });
  assert.doesNotMatch(stdout, /Pattern verification failed|error/i);
  assert.equal(stdout.match(/^read /gm)?.length, 4);
  // What the initiator wrote is what the device holds.
  assert.deepEqual(await target.device.read(1 * MiB, 4096), Buffer.alloc(4096, 0xcd));
});

test('qemu-img converts a 64 MiB random image onto the target and compares equal', async (t) => {
  if (!requireTools(t, QEMU)) return;
  const image = join(dir, 'src.img');
  await writeFile(image, randomBytes(64 * MiB));
  await run('qemu-img', ['convert', '-n', '-O', 'raw', image, target.url()], { timeout: 120_000 });
  const { stdout } = await run('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, target.url()], { timeout: 120_000 });
  assert.match(stdout, /Images are identical/);
});

test('header digests (CRC32C) negotiated by QEMU carry real traffic', async (t) => {
  if (!requireTools(t, QEMU)) return;
  const opts = `driver=iscsi,transport=tcp,portal=127.0.0.1:${target.port},target=${target.iqn},lun=0,header-digest=crc32c`;
  const { stdout } = await run('qemu-io', ['--image-opts', '-c', 'write -P 0x3c 2M 2M', '-c', 'read -P 0x3c 2M 2M', opts], { timeout: 60_000 });
  assert.doesNotMatch(stdout, /Pattern verification failed/);
  assert.match(stdout, /read 2097152\/2097152/);
  const pdus = await target.registry.getSingleMetric('trireme_iscsi_pdus_total')?.get();
  assert.ok(pdus && pdus.values.some((v) => v.labels.opcode === 'data-in' && v.value > 0));
});
