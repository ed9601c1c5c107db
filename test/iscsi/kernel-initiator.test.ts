import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startTarget, type RunningTarget } from './support/target';

const run = promisify(execFile);
const MiB = 1024 * 1024;
/** The shared harness that boots a Debian kernel under QEMU and drives open-iscsi (DESIGN.md, testing tools). */
// shared/ sits beside the checkout (dist/test/iscsi -> ../../../../shared), in CI as on a developer's machine.
const HARNESS = process.env.TRIREME_VMI_SCRIPT ?? join(__dirname, '..', '..', '..', '..', 'shared', 'vm-initiator', 'run.sh');

let open: RunningTarget;
let guarded: RunningTarget;

const harnessMissing = (): string | undefined =>
  // The harness and KVM exist only on machines set up for it; without KVM the VM is too slow for this suite.
  existsSync(HARNESS) && existsSync('/dev/kvm') ? undefined : `needs ${HARNESS} and /dev/kvm`;

async function runHarness(target: RunningTarget, extra: Record<string, string>): Promise<string> {
  const env = {
    ...process.env,
    // The VM artifacts are built on first use and cached here.
    VMI_WORK: process.env.VMI_WORK ?? join(tmpdir(), 'trireme-vmi'),
    VMI_TIMEOUT: '400',
    ...extra,
  };
  try {
    const { stdout, stderr } = await run(HARNESS, [`127.0.0.1:${target.port}`, target.iqn, '0'], { env, timeout: 540_000, maxBuffer: 16 * MiB });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    return assert.fail(`vm-initiator exited ${e.code}: ${(e.stdout ?? '').slice(-4000)}${(e.stderr ?? '').slice(-2000)}`);
  }
}

const VM_CHAP = { user: 'vmuser', secret: 'vmsecret123456' };
const TARGET_CHAP = { user: 'tgtuser', secret: 'tgtsecret12345' };

before(async () => {
  open = await startTarget({ size: 128 * MiB, iqn: 'iqn.2026-11.io.trireme:kernel-open' });
  guarded = await startTarget({
    size: 256 * MiB,
    iqn: 'iqn.2026-11.io.trireme:kernel',
    chap: VM_CHAP,
    mutualChap: TARGET_CHAP,
    discoveryChap: { chap: VM_CHAP, mutualChap: TARGET_CHAP },
  });
});

after(async () => {
  await open.close();
  await guarded.close();
});

test('the Linux kernel initiator discovers the target with iscsiadm, logs in, makes a filesystem and reads it back', { timeout: 600_000 }, async (t) => {
  const missing = harnessMissing();
  if (missing) return t.skip(missing);
  const output = await runHarness(open, { VMI_EXPECT_BYTES: String(128 * MiB) });
  assert.match(output, new RegExp(`127\\.0\\.0\\.1:${open.port},1 ${open.iqn}`), 'SendTargets lists the target');
  assert.match(output, /VMI-RESULT: PASS/);
});

test('the Linux kernel initiator discovers and logs in with mutual CHAP and CRC32C digests and keeps data intact', { timeout: 600_000 }, async (t) => {
  const missing = harnessMissing();
  if (missing) return t.skip(missing);
  const output = await runHarness(guarded, {
    VMI_CHAP_USER: 'vmuser',
    VMI_CHAP_PASS: 'vmsecret123456',
    VMI_CHAP_USER_IN: 'tgtuser',
    VMI_CHAP_PASS_IN: 'tgtsecret12345',
    VMI_HEADER_DIGEST: 'CRC32C',
    VMI_DATA_DIGEST: 'CRC32C',
    VMI_EXPECT_BYTES: String(256 * MiB),
  });
  assert.match(output, /VMI-RESULT: PASS/);
  assert.match(output, /HeaderDigest: CRC32C; DataDigest: CRC32C/);
});
