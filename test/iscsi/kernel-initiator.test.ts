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
const HARNESS = process.env.TRIREME_VMI_SCRIPT ?? '/work/shared/vm-initiator/run.sh';

let target: RunningTarget;

before(async () => {
  target = await startTarget({
    size: 256 * MiB,
    iqn: 'iqn.2026-11.io.trireme:kernel',
    chap: { user: 'vmuser', secret: 'vmsecret123456' },
    mutualChap: { user: 'tgtuser', secret: 'tgtsecret12345' },
  });
});

after(async () => {
  await target.close();
});

test('the Linux kernel initiator logs in with mutual CHAP and CRC32C digests, makes a filesystem and reads it back', { timeout: 600_000 }, async (t) => {
  // The harness and KVM exist only on machines set up for it; without KVM the VM is too slow for this suite.
  if (!existsSync(HARNESS) || !existsSync('/dev/kvm')) {
    t.skip(`needs ${HARNESS} and /dev/kvm`);
    return;
  }
  const env = {
    ...process.env,
    // The VM artifacts are built on first use and cached here.
    VMI_WORK: process.env.VMI_WORK ?? join(tmpdir(), 'trireme-vmi'),
    VMI_TIMEOUT: '400',
    VMI_CHAP_USER: 'vmuser',
    VMI_CHAP_PASS: 'vmsecret123456',
    VMI_CHAP_USER_IN: 'tgtuser',
    VMI_CHAP_PASS_IN: 'tgtsecret12345',
    VMI_HEADER_DIGEST: 'CRC32C',
    VMI_DATA_DIGEST: 'CRC32C',
    // Discovery sessions carry no CHAP credentials on this target; discovery is covered with libiscsi.
    VMI_DISCOVERY: '0',
    VMI_EXPECT_BYTES: String(256 * MiB),
  };
  let output: string;
  try {
    const { stdout, stderr } = await run(HARNESS, [`127.0.0.1:${target.port}`, target.iqn, '0'], { env, timeout: 540_000, maxBuffer: 16 * MiB });
    output = stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; code?: number };
    assert.fail(`vm-initiator exited ${e.code}: ${(e.stdout ?? '').slice(-4000)}${(e.stderr ?? '').slice(-2000)}`);
  }
  assert.match(output, /VMI-RESULT: PASS/);
  assert.match(output, /HeaderDigest: CRC32C; DataDigest: CRC32C/);
});
