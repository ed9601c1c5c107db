import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from '../../support/host-tools';
import { startTarget, type RunningTarget } from '../support/target';

const run = promisify(execFile);
const MiB = 1024 * 1024;

let target: RunningTarget;
let dir: string;

before(async () => {
  // libiscsi's WRITE SAME tests write 65536 blocks near LBA 0; 128 MiB leaves room.
  target = await startTarget({ size: 128 * MiB });
  dir = await mkdtemp(join(tmpdir(), 'trireme-scsi-cu-'));
});

after(async () => {
  await target.close();
  await rm(dir, { recursive: true, force: true });
});

interface Outcome {
  readonly name: string;
  readonly failures: string[];
}

/** Reads CUnit's automated XML report: one entry per test, with its failed assertions. */
function parseResults(xml: string): Outcome[] {
  const outcomes: Outcome[] = [];
  let suite = '';
  const pattern = /<SUITE_NAME>\s*(.*?)\s*<\/SUITE_NAME>|<CUNIT_RUN_TEST_(SUCCESS|FAILURE)>\s*<TEST_NAME>\s*(.*?)\s*<\/TEST_NAME>([\s\S]*?)<\/CUNIT_RUN_TEST_(?:SUCCESS|FAILURE)>/g;
  for (const m of xml.matchAll(pattern)) {
    if (m[1] !== undefined) {
      suite = m[1];
      continue;
    }
    const name = `${suite}.${m[3]}`;
    const failures = m[2] === 'FAILURE' ? [...m[4].matchAll(/<CONDITION>\s*([\s\S]*?)\s*<\/CONDITION>/g)].map((c) => c[1]) : [];
    const existing = outcomes.find((o) => o.name === name);
    if (existing) existing.failures.push(...failures);
    else outcomes.push({ name, failures });
  }
  return outcomes;
}

test('iscsi-test-cu: every test of the SCSI family passes against the target', { timeout: 240_000 }, async (t) => {
  if (!requireTools(t, { 'iscsi-test-cu': 'libiscsi-bin' })) return;
  // -x writes CUnitAutomated-Results.xml into the working directory.
  await run('iscsi-test-cu', ['-d', '-x', '-t', 'SCSI', target.url()], { cwd: dir, timeout: 230_000, maxBuffer: 64 * MiB });
  const outcomes = parseResults(await readFile(join(dir, 'CUnitAutomated-Results.xml'), 'utf8'));
  assert.ok(outcomes.length >= 200, `ran ${outcomes.length} tests`);
  const failed = outcomes.filter((o) => o.failures.length > 0).map((o) => `${o.name}: ${o.failures.join('; ')}`);
  assert.deepEqual(failed, []);
  for (const suite of ['CompareAndWrite', 'ProutReserve', 'ProutPreempt', 'ReportSupportedOpcodes', 'Unmap', 'WriteSame16', 'Verify16', 'OrWrite']) {
    assert.ok(outcomes.some((o) => o.name.startsWith(`${suite}.`)), `suite ${suite} ran`);
  }
});

test('qemu-io: discard and write-zeroes reach UNMAP / WRITE SAME and read back as zeros', async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  const qemu = (...commands: string[]) => run('qemu-io', ['-f', 'raw', ...commands.flatMap((c) => ['-c', c]), target.url()], { timeout: 60_000 });
  await qemu('write -P 0x5a 64M 4M');
  const allocated = target.device.allocatedBytes();
  const { stdout } = await qemu('discard 65M 1M', 'write -z -u 67M 512k', 'read -P 0 65M 1M', 'read -P 0 67M 512k', 'read -P 0x5a 64M 1M', 'read -P 0x5a 66M 1M');
  assert.doesNotMatch(stdout, /Pattern verification failed|error/i);
  assert.equal(stdout.match(/^read /gm)?.length, 4);
  assert.deepEqual(await target.device.read(65 * MiB, 4096), Buffer.alloc(4096));
  assert.deepEqual(await target.device.read(66 * MiB, 4096), Buffer.alloc(4096, 0x5a));
  // The memory device gave the discarded chunks back (thin provisioning).
  assert.ok(target.device.allocatedBytes() <= allocated - 1.5 * MiB, `allocated ${target.device.allocatedBytes()} of ${allocated}`);
});
