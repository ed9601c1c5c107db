import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { requireTools } from '../../support/host-tools';
import { CsiTestClient, grpcStatus } from '../../node/support/csi-client';
import { TRIREME_ENTRY } from '../../support/trireme-cli';

// `trireme csi` as a real process, started from the build under test (dist/)
// rather than bin/trireme.js, which would first rebuild the whole tree.
const root = resolve(__dirname, '..', '..', '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'trireme-csi-cmd-'));
const launcher = TRIREME_ENTRY;
const children: ChildProcess[] = [];

after(() => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  rmSync(dir, { recursive: true, force: true });
});

function run(args: string[]): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, [launcher, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_LOG_LEVEL: 'info' } });
  children.push(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  return { child, output: () => output, exited };
}

async function waitForSocket(path: string, exited: Promise<unknown>): Promise<void> {
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 200 && !gone; i++) {
    if (existsSync(path)) return;
    await sleep(50);
  }
  throw new Error(`no socket at ${path}`);
}

test('trireme csi --mode node serves identity and node on the socket, and leaves on SIGTERM', async (t) => {
  if (!requireTools(t, { iscsiadm: 'open-iscsi', blkid: 'util-linux' })) return;
  const socket = join(dir, 'node', 'csi.sock');
  const proc = run(['csi', '--endpoint', `unix://${socket}`, '--mode', 'node', '--node-id', 'worker-7', '--state-dir', join(dir, 'state'), '--max-volumes', '12']);
  await waitForSocket(socket, proc.exited);
  const client = new CsiTestClient(socket);
  try {
    const info = await client.call<{ name: string; vendor_version: string }>('Identity', 'GetPluginInfo');
    const version = (JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }).version;
    assert.deepEqual([info.name, info.vendor_version], ['csi.trireme.io', version]);
    // Ready: blkid, mount and iscsiadm all answer on this host.
    assert.equal((await client.call<{ ready: { value: boolean } }>('Identity', 'Probe')).ready.value, true);
    const caps = await client.call<{ capabilities: Array<{ service?: { type: string } }> }>('Identity', 'GetPluginCapabilities');
    assert.ok(!caps.capabilities.some((c) => c.service?.type === 'CONTROLLER_SERVICE'));
    const node = await client.call<{ node_id: string; max_volumes_per_node: number }>('Node', 'NodeGetInfo');
    assert.deepEqual([node.node_id, node.max_volumes_per_node], ['worker-7', 12]);
    await assert.rejects(client.call('Controller', 'ControllerGetCapabilities'), grpcStatus(status.UNIMPLEMENTED));
  } finally {
    client.close();
  }
  proc.child.kill('SIGTERM');
  assert.equal(await proc.exited, 0);
  assert.equal(existsSync(socket), false, 'the socket is removed on shutdown');
  assert.match(proc.output(), /csi driver ready/);
});

test('trireme csi refuses bad options with a clear message', async () => {
  const cases: Array<[string[], RegExp]> = [
    [['csi', '--endpoint', `unix://${join(dir, 'x.sock')}`, '--mode', 'sideways', '--node-id', 'n'], /--mode must be controller, node or all/],
    [['csi', '--endpoint', `unix://${join(dir, 'x.sock')}`, '--mode', 'node'], /--node-id is required in mode node/],
    [['csi', '--endpoint', 'relative/path.sock', '--mode', 'node', '--node-id', 'n'], /invalid CSI endpoint/],
    [['csi', '--endpoint', `unix://${join(dir, 'x.sock')}`, '--mode', 'controller', '--orchestrator', 'nomad'], /unknown --orchestrator "nomad" \(available: kubernetes, local\)/],
    [['csi', '--endpoint', `unix://${join(dir, 'x.sock')}`, '--mode', 'controller', '--orchestrator', 'kubernetes', '--replica-node-grace', '5 minutes'], /--replica-node-grace: expected a duration such as 300s, 5m or 1h, got "5 minutes"/],
  ];
  for (const [args, message] of cases) {
    const proc = run(args);
    const code = await proc.exited;
    assert.notEqual(code, 0, args.join(' '));
    assert.match(proc.output(), message);
  }
});
