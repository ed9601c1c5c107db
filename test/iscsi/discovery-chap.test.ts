import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { MemoryDevice } from '../../src/iscsi/device/memory-device';
import { requireTools } from '../support/host-tools';
import { startTarget, type RunningTarget } from './support/target';

const run = promisify(execFile);
const LIBISCSI = { 'iscsi-ls': 'libiscsi-bin', 'iscsi-inq': 'libiscsi-bin' };
const SECOND_IQN = 'iqn.2026-11.io.trireme:second';

let open: RunningTarget;
let chap: RunningTarget;
let guarded: RunningTarget;

before(async () => {
  open = await startTarget();
  open.server.addTarget({ iqn: SECOND_IQN, luns: [{ lun: 0, device: new MemoryDevice({ size: 1024 * 1024 }) }] });
  chap = await startTarget({ chap: { user: 'alice', secret: 'alicesecret12' }, mutualChap: { user: 'target', secret: 'targetsecret9' } });
  guarded = await startTarget({ discoveryChap: { chap: { user: 'finder', secret: 'findersecret12' } } });
});

after(async () => {
  await open.close();
  await chap.close();
  await guarded.close();
});

async function attempt(file: string, args: string[]): Promise<{ ok: boolean; output: string }> {
  try {
    const { stdout, stderr } = await run(file, args, { timeout: 20_000 });
    return { ok: true, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('iscsi-ls discovers every target of the portal through SendTargets', async (t) => {
  // iscsiadm discovery needs the kernel iSCSI transport, which this host lacks; libiscsi is the discovery client.
  if (!requireTools(t, LIBISCSI)) return;
  const { stdout } = await run('iscsi-ls', [`iscsi://127.0.0.1:${open.port}`], { timeout: 20_000 });
  assert.match(stdout, new RegExp(`Target:${open.iqn} Portal:127\\.0\\.0\\.1:${open.port},1`));
  assert.match(stdout, new RegExp(`Target:${SECOND_IQN} Portal:127\\.0\\.0\\.1:${open.port},1`));
});

test('iscsi-inq reaches both targets of one process', async (t) => {
  if (!requireTools(t, LIBISCSI)) return;
  for (const iqn of [open.iqn, SECOND_IQN]) {
    const { stdout } = await run('iscsi-inq', [`iscsi://127.0.0.1:${open.port}/${iqn}/0`], { timeout: 20_000 });
    assert.match(stdout, /Peripheral Device Type:DIRECT_ACCESS/);
  }
});

test('a target that does not exist is refused', async (t) => {
  if (!requireTools(t, LIBISCSI)) return;
  const result = await attempt('iscsi-inq', [`iscsi://127.0.0.1:${open.port}/iqn.2026-11.io.trireme:absent/0`]);
  assert.equal(result.ok, false);
  assert.match(result.output, /not found/i);
});

test('CHAP: the right secret logs in, a wrong or missing one is refused with authentication failure', async (t) => {
  if (!requireTools(t, LIBISCSI)) return;
  const good = await attempt('iscsi-inq', [chap.url(0, 'alice%alicesecret12@')]);
  assert.ok(good.ok, good.output);
  const wrong = await attempt('iscsi-inq', [chap.url(0, 'alice%notthesecret@')]);
  assert.equal(wrong.ok, false);
  assert.match(wrong.output, /Authentication failure/);
  const none = await attempt('iscsi-inq', [chap.url()]);
  assert.equal(none.ok, false);
  assert.match(none.output, /Authentication failure/);
  const wrongUser = await attempt('iscsi-inq', [chap.url(0, 'mallory%alicesecret12@')]);
  assert.equal(wrongUser.ok, false);
});

test('mutual CHAP: the target proves itself; a wrong target secret is caught by the initiator', async (t) => {
  if (!requireTools(t, LIBISCSI)) return;
  const good = await attempt('iscsi-inq', [`${chap.url(0, 'alice%alicesecret12@')}?target_user=target&target_password=targetsecret9`]);
  assert.ok(good.ok, good.output);
  const bad = await attempt('iscsi-inq', [`${chap.url(0, 'alice%alicesecret12@')}?target_user=target&target_password=someoneelse1`]);
  assert.equal(bad.ok, false);
  assert.match(bad.output, /CHAP_R/);
});

test('discovery CHAP: SendTargets needs the discovery secret when one is configured', async (t) => {
  if (!requireTools(t, LIBISCSI)) return;
  const good = await attempt('iscsi-ls', [`iscsi://finder%findersecret12@127.0.0.1:${guarded.port}`]);
  assert.ok(good.ok, good.output);
  assert.match(good.output, new RegExp(`Target:${guarded.iqn}`));
  const wrong = await attempt('iscsi-ls', [`iscsi://finder%nottheone1234@127.0.0.1:${guarded.port}`]);
  assert.equal(wrong.ok, false);
  const none = await attempt('iscsi-ls', [`iscsi://127.0.0.1:${guarded.port}`]);
  assert.equal(none.ok, false);
  // Normal sessions of a target without CHAP are unaffected.
  const inq = await attempt('iscsi-inq', [guarded.url()]);
  assert.ok(inq.ok, inq.output);
});
