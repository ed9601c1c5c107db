import assert from 'node:assert/strict';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from '../support/host-tools';
import { triremeArgs } from './stack-helpers';

const run = promisify(execFile);
const IQN = 'iqn.2026-11.io.trireme:cli-test';
const children: ChildProcess[] = [];

after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
});

/** Starts `trireme target` on port 0 and waits for its banner and its JSON "target ready" log line. */
async function startTarget(extra: string[] = []): Promise<{ child: ChildProcess; port: number; metrics: string; stderr: () => string }> {
  const args = [...triremeArgs(), 'target', '--device', 'mem', '--size', '16M', '--portal', '127.0.0.1:0', '--metrics', '127.0.0.1:0', '--iqn', IQN, ...extra];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_LOG_LEVEL: 'info' } });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline && child.exitCode === null && !(/ on 127\.0\.0\.1:(\d+)\n/.test(stdout) && /"target ready"/.test(stderr))) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const port = Number(/ on 127\.0\.0\.1:(\d+)\n/.exec(stdout)?.[1]);
  const metrics = /"metrics":"([^"]+)"/.exec(stderr)?.[1] ?? '';
  assert.ok(port > 0, `no banner: ${stdout}${stderr}`);
  return { child, port, metrics, stderr: () => stderr };
}

async function exitOf(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return child.exitCode;
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

test('trireme target serves a memory device, exposes metrics and stops cleanly on SIGTERM', async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils', 'iscsi-ls': 'libiscsi-bin' })) return;
  const { child, port, metrics } = await startTarget();
  const url = `iscsi://127.0.0.1:${port}/${IQN}/0`;
  const io = await run('qemu-io', ['-f', 'raw', '-c', 'write -P 0x77 0 256k', '-c', 'read -P 0x77 0 256k', url], { timeout: 60_000 });
  assert.doesNotMatch(io.stdout, /Pattern verification failed/);
  const ls = await run('iscsi-ls', [`iscsi://127.0.0.1:${port}`], { timeout: 20_000 });
  assert.match(ls.stdout, new RegExp(`Target:${IQN}`));
  const text = await (await fetch(`http://${metrics}/metrics`)).text();
  for (const name of ['trireme_iscsi_pdus_total', 'trireme_iscsi_commands_total', 'trireme_iscsi_transferred_bytes_total', 'trireme_iscsi_sessions', 'trireme_iscsi_command_seconds_bucket']) {
    assert.match(text, new RegExp(`^${name}`, 'm'), name);
  }
  assert.match(text, /trireme_iscsi_commands_total\{class="write"[^}]*\} [1-9]/);
  child.kill('SIGTERM');
  assert.equal(await exitOf(child), 0);
});

test('trireme target with CHAP refuses a wrong secret and accepts the right one', async (t) => {
  if (!requireTools(t, { 'iscsi-inq': 'libiscsi-bin' })) return;
  const { child, port, stderr } = await startTarget(['--chap-user', 'bob', '--chap-secret', 'bobsecret1234', '--log-level', 'trace']);
  await assert.rejects(run('iscsi-inq', [`iscsi://bob%nope@127.0.0.1:${port}/${IQN}/0`], { timeout: 20_000 }));
  const ok = await run('iscsi-inq', [`iscsi://bob%bobsecret1234@127.0.0.1:${port}/${IQN}/0`], { timeout: 20_000 });
  assert.match(ok.stdout, /DIRECT_ACCESS/);
  child.kill('SIGTERM');
  assert.equal(await exitOf(child), 0);
  // Not even trace logging carries the secret.
  assert.doesNotMatch(stderr(), /bobsecret1234/);
  assert.match(stderr(), /login refused/);
});

test('trireme target rejects a bad device spec with a clear error', async () => {
  const child = spawn(process.execPath, [...triremeArgs(), 'target', '--device', 'tape:/dev/st0', '--portal', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  assert.notEqual(await exitOf(child), 0);
  assert.match(stderr, /invalid --device/);
});
