import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { identityService, startCsiServer } from '../../src/common/csi';
import { silentLogger } from '../../src/common/logger';
import { createExecutor, HostCommandError, IscsiAcquirer, nodeService, ProcessExecutor, iscsiByPathLink, type HostExecutor, type RunOptions, type RunResult } from '../../src/node';
import { requireTools } from '../support/host-tools';
import { CsiTestClient, grpcStatus } from './support/csi-client';

const target = { portal: '10.0.0.5:3260', iqn: 'iqn.2026-11.io.trireme:pvc-1', lun: 0 };

/**
 * Records iscsiadm invocations and answers discovery with a canned SendTargets
 * reply. A stand-in only because this host's kernel has no iSCSI transport
 * (iscsi_tcp), so real discovery and login fail before reaching any target; the
 * real iscsiadm still runs below wherever it can (version, logout, delete), and
 * the whole path runs for real in a VM's kernel initiator in vm-stage.test.ts.
 */
class RecordingExecutor implements HostExecutor {
  readonly calls: Array<{ command: string; args: readonly string[]; options?: RunOptions }> = [];
  constructor(private readonly discovery: string) {}

  async run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    this.calls.push({ command, args, options });
    if (args.includes('discovery')) return { stdout: this.discovery, stderr: '', exitCode: 0 };
    return { stdout: '', stderr: '', exitCode: 0 };
  }
}

test('attach: discovery, CHAP settings on the node record (secrets marked), login; returns the by-path link', async () => {
  const exec = new RecordingExecutor(`10.0.0.5:3260,1 iqn.2026-11.io.trireme:other\n10.0.0.5:3260,1 ${target.iqn}\n`);
  const acquirer = new IscsiAcquirer(exec, silentLogger());
  const link = await acquirer.attach(target, { user: 'alice', secret: 's3cret-s3cret', mutualUser: 'tgt', mutualSecret: 'mutual-s3cret' });
  assert.equal(link, `/dev/disk/by-path/ip-10.0.0.5:3260-iscsi-${target.iqn}-lun-0`);
  assert.equal(link, iscsiByPathLink(target));
  const lines = exec.calls.map((c) => [c.command, ...c.args].join(' '));
  const node = `iscsiadm -m node -T ${target.iqn} -p ${target.portal}`;
  assert.deepEqual(lines, [
    `iscsiadm -m discovery -t sendtargets -p ${target.portal} -o nonpersistent`,
    `${node} -o new`,
    `${node} -o update -n node.session.auth.authmethod -v CHAP`,
    `${node} -o update -n node.session.auth.username -v alice`,
    `${node} -o update -n node.session.auth.password -v s3cret-s3cret`,
    `${node} -o update -n node.session.auth.username_in -v tgt`,
    `${node} -o update -n node.session.auth.password_in -v mutual-s3cret`,
    `${node} -o update -n node.startup -v manual`,
    `${node} --login`,
  ]);
  for (const call of exec.calls) {
    for (const [i, arg] of call.args.entries()) {
      if (arg.includes('s3cret')) assert.deepEqual(call.options?.secretArgs, [i], 'every secret argument is marked for redaction');
    }
  }
  assert.deepEqual(exec.calls.at(-1)?.options?.okExitCodes, [15], 'an existing session (ISCSI_ERR_SESS_EXISTS) counts as logged in');
});

test('attach without CHAP sets authmethod None; a target the portal does not offer is refused before login', async () => {
  const exec = new RecordingExecutor(`10.0.0.5:3260,1 ${target.iqn}\n`);
  await new IscsiAcquirer(exec, silentLogger()).attach(target);
  assert.ok(exec.calls.some((c) => c.args.join(' ').endsWith('node.session.auth.authmethod -v None')));
  const other = new RecordingExecutor('10.0.0.5:3260,1 iqn.2026-11.io.trireme:someone-else\n');
  await assert.rejects(new IscsiAcquirer(other, silentLogger()).attach(target), { code: 'ERR_TARGET_NOT_OFFERED' });
  assert.ok(!other.calls.some((c) => c.args.includes('--login')));
});

test('a login the target refuses for its CHAP credentials (iscsiadm exit 24) is ERR_ISCSI_AUTH_FAILED, other failures pass through', async () => {
  class RefusingExecutor extends RecordingExecutor {
    constructor(private readonly loginExit: number) {
      super(`10.0.0.5:3260,1 ${target.iqn}\n`);
    }
    override async run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
      if (args.includes('--login')) throw new HostCommandError(`iscsiadm ${args.join(' ')}`, this.loginExit, 'iscsiadm: Could not log into all portals');
      return super.run(command, args, options);
    }
  }
  await assert.rejects(new IscsiAcquirer(new RefusingExecutor(24), silentLogger()).attach(target, { user: 'alice', secret: 's3cret-s3cret' }), (err: Error & { code: string }) => {
    assert.equal(err.code, 'ERR_ISCSI_AUTH_FAILED');
    assert.match(err.message, /refused the CHAP credentials/);
    assert.ok(!err.message.includes('s3cret'));
    return true;
  });
  // 8: ISCSI_ERR_TRANS_TIMEOUT, a target that does not answer: not an authentication problem.
  await assert.rejects(new IscsiAcquirer(new RefusingExecutor(8), silentLogger()).attach(target), { code: 'ERR_HOST_COMMAND' });
});

test('rescan targets only this session; detach logs out then deletes the record', async () => {
  const exec = new RecordingExecutor('');
  const acquirer = new IscsiAcquirer(exec, silentLogger());
  await acquirer.rescan(target);
  await acquirer.detach(target);
  assert.deepEqual(
    exec.calls.map((c) => c.args.slice(6).join(' ')),
    ['-R', '--logout', '-o delete'],
  );
});

test('real iscsiadm: detaching a target never logged in succeeds (exit 21 is "already gone"), and the tool answers', async (t) => {
  if (!requireTools(t, { iscsiadm: 'open-iscsi' })) return;
  const acquirer = new IscsiAcquirer(new ProcessExecutor(silentLogger()), silentLogger());
  await acquirer.detach({ portal: '127.0.0.1:3999', iqn: 'iqn.2026-11.io.trireme:never-attached', lun: 0 });
  await acquirer.detach({ portal: '127.0.0.1:3999', iqn: 'iqn.2026-11.io.trireme:never-attached', lun: 0 });
  assert.equal(await acquirer.ready(), true);
});

test('a failing host command reports its stderr and never its secret arguments', async () => {
  const exec = new ProcessExecutor(silentLogger());
  await assert.rejects(exec.run('ls', ['/definitely/not/here', 'hunter2-secret'], { secretArgs: [1] }), (err: HostCommandError) => {
    assert.equal(err.code, 'ERR_HOST_COMMAND');
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /^ls \/definitely\/not\/here \[redacted\] failed \(exit 2\): .*No such file/);
    assert.ok(!err.message.includes('hunter2'));
    return true;
  });
  await assert.rejects(exec.run('sleep', ['5'], { timeoutMs: 100 }), (err: HostCommandError) => err.code === 'ERR_HOST_COMMAND' && /sleep 5 failed .*killed after 100 ms/.test(err.message));
});

test('the nsenter executor runs every command inside the host mount namespace', async () => {
  // Runs the real nsenter. Where PID 1's namespace may be entered (a privileged
  // pod with hostPID, or a host) the command's output comes back; in a sandbox
  // that forbids it, the error shows the exact command line and nsenter's reason.
  try {
    const result = await createExecutor('nsenter', silentLogger()).run('cat', ['/proc/self/mountinfo']);
    assert.match(result.stdout, / - /);
  } catch (err) {
    assert.ok(err instanceof HostCommandError);
    assert.match(err.message, /^nsenter --mount=\/proc\/1\/ns\/mnt -- cat \/proc\/self\/mountinfo failed \(exit 1\): nsenter: /);
  }
});

test('NodeStageVolume over iscsiadm: a target not offered, or a login without a device, is NOT_FOUND', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-iscsi-stage-'));
  const logger = silentLogger();
  const iscsiadm = new RecordingExecutor(`127.0.0.1:3260,1 ${target.iqn}\n`);
  const server = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: 'test', controllerService: false, readinessChecks: [], logger }),
    // iscsiadm is recorded (no initiator here); every other host tool runs for real.
    node: nodeService({ nodeId: 'n', maxVolumesPerNode: 0, executor: createExecutor('direct', logger), acquirer: new IscsiAcquirer(iscsiadm, logger), stateDir: join(dir, 'state'), deviceTimeoutMs: 300, logger }),
    logger,
  });
  const client = new CsiTestClient(server.socketPath);
  try {
    const request = {
      volume_id: 'v1',
      staging_target_path: join(dir, 'staging'),
      volume_capability: { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } },
      volume_context: { portal: '127.0.0.1:3260', iqn: 'iqn.2026-11.io.trireme:not-offered', lun: '0' },
    };
    await assert.rejects(client.call('Node', 'NodeStageVolume', request), (err: Error & { code: number }) => err.code === status.NOT_FOUND && /does not offer target/.test(err.message));
    // Offered and logged in, but no /dev/disk/by-path link appears (no kernel initiator here).
    await assert.rejects(client.call('Node', 'NodeStageVolume', { ...request, volume_context: { ...request.volume_context, iqn: target.iqn } }), grpcStatus(status.NOT_FOUND));
    assert.ok(iscsiadm.calls.some((c) => c.args.includes('--login')));
    // Unstage after the failed stage logs out (the record was kept for exactly this).
    await client.call('Node', 'NodeUnstageVolume', { volume_id: 'v1', staging_target_path: join(dir, 'staging') });
    assert.ok(iscsiadm.calls.at(-2)?.args.includes('--logout'));
  } finally {
    client.close();
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
