import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import type { VolumeMessage } from '../../src/controller/manager/manager-client';
import type { SnapshotView } from '../../src/controller/management/volume-control';
import { CsiTestClient } from '../node/support/csi-client';
import { requireTools } from '../support/host-tools';
import { isAlive, qemuIo, randomPortBase, startTrireme, stopProcess, trireme, triremeArgs, triremeJson, until } from './stack-helpers';

const TOOLS = { 'qemu-io': 'qemu-utils' };
const dataDir = mkdtempSync(join(tmpdir(), 'trireme-up-'));
const base = randomPortBase();
const upArgs = ['up', '--data', dataDir, '--portal-port', String(base), '--management-port', String(base + 20), '--metrics-port', String(base + 40), '--replica-port', String(base + 60)];
let up: ChildProcess | undefined;
const pids = new Set<number>();

after(async () => {
  if (up) await stopProcess(up);
  // Children the manager could not stop (it was SIGKILLed in a failing run) are killed here.
  for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
  rmSync(dataDir, { recursive: true, force: true });
});

const data = (args: string[]): string[] => [...args, '--data', dataDir];
const status = (name: string): VolumeMessage => triremeJson<VolumeMessage>(data(['volume', 'status', name]));
const remember = (v: VolumeMessage): void => {
  if (v.controller.pid) pids.add(v.controller.pid);
  for (const r of v.replicas) if (r.process.pid) pids.add(r.process.pid);
};

test('trireme up: demo volume, operator commands, replica restart and rebuild, restart of the stack', { timeout: 600_000 }, async (t) => {
  if (!requireTools(t, TOOLS)) return;
  const started = await startTrireme(upArgs, /manage volumes with/, 120_000);
  up = started.child;
  const banner = started.output();
  const portal = `127.0.0.1:${base}`;
  assert.match(banner, new RegExp(`iscsiadm -m discovery -t sendtargets -p ${portal.replace(/\./g, '\\.')}`));
  assert.match(banner, /qemu-io -f raw -c 'read 0 4k' iscsi:\/\/127\.0\.0\.1:\d+\/iqn\.2026-11\.io\.trireme:demo\/0/);

  // The demo volume, through a real initiator.
  const demo = status('demo');
  remember(demo);
  assert.equal(demo.sizeBytes, 1024 ** 3);
  assert.equal(demo.replicaCount, 3);
  assert.equal(demo.portal, portal);
  const url = `iscsi://${portal}/${demo.iqn}/0`;
  qemuIo(url, 'write -P 0xa7 1M 2M');
  qemuIo(url, 'read -P 0xa7 1M 2M');
  qemuIo(url, 'read -P 0 0 1M');

  // The CSI driver on DATA/csi.sock shares the stack's records: a CSI volume is a `trireme volume`.
  assert.match(banner, new RegExp(`CSI driver csi\\.trireme\\.io on unix://${dataDir.replace(/[.]/g, '\\.')}/csi\\.sock`));
  const csi = new CsiTestClient(join(dataDir, 'csi.sock'));
  try {
    assert.equal((await csi.call<{ name: string }>('Identity', 'GetPluginInfo')).name, 'csi.trireme.io');
    const { volume } = await csi.call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
      name: 'pvc-up',
      capacity_range: { required_bytes: 16 * 1024 * 1024 },
      volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      parameters: { replicaCount: '1' },
    });
    const viaCli = triremeJson<VolumeMessage>(data(['volume', 'status', volume.volume_id]));
    remember(viaCli);
    assert.equal(viaCli.portal, volume.volume_context.portal);
    assert.equal(viaCli.iqn, volume.volume_context.iqn);
    await csi.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
    assert.deepEqual(triremeJson<VolumeMessage[]>(data(['volume', 'ls'])).map((v) => v.name), ['demo']);
  } finally {
    csi.close();
  }

  // status --watch: one JSON view per line until interrupted.
  const watcher = spawn(process.execPath, [...triremeArgs(), 'volume', 'status', 'demo', '--watch', '0.3', '--json', '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  let watched = '';
  watcher.stdout.on('data', (d: Buffer) => (watched += d.toString()));
  await until('three views', () => watched.split('\n').filter(Boolean).length, (n) => n >= 3, 30_000);
  const watchExit = new Promise<number | null>((resolve) => watcher.once('exit', resolve));
  watcher.kill('SIGINT');
  assert.equal(await watchExit, 0);
  for (const line of watched.split('\n').filter(Boolean)) assert.equal((JSON.parse(line) as VolumeMessage).name, 'demo');

  // Operator commands with --json.
  const created = triremeJson<VolumeMessage>(data(['volume', 'create', 'v2', '--size', '64M', '--replicas', '2']));
  remember(created);
  assert.equal(created.name, 'v2');
  assert.equal(created.sizeBytes, 64 * 1024 * 1024);
  assert.equal(created.replicaCount, 2);
  assert.notEqual(created.portal, portal, 'each controller has its own portal');
  const listed = triremeJson<VolumeMessage[]>(data(['volume', 'ls']));
  assert.deepEqual(listed.map((v) => v.name).sort(), ['demo', 'v2']);
  const v2 = await until('v2 healthy', () => status('v2'), (v) => v.status?.state === 'healthy');
  assert.deepEqual(v2.status?.replicas.map((r) => r.mode), ['RW', 'RW']);
  const expanded = triremeJson<VolumeMessage>(data(['volume', 'expand', 'v2', '--size', '128M']));
  assert.equal(expanded.sizeBytes, 128 * 1024 * 1024);
  assert.equal(expanded.status?.sizeBytes, 128 * 1024 * 1024);

  const snap = triremeJson<SnapshotView>(data(['snapshot', 'create', 'v2', 'first']));
  assert.equal(snap.name, 'first');
  assert.deepEqual(triremeJson<SnapshotView[]>(data(['snapshot', 'ls', 'v2'])).map((s) => s.name), ['first']);
  // Replica add and rm: written data survives the swap of the replica set.
  const v2url = `iscsi://${created.portal}/${created.iqn}/0`;
  qemuIo(v2url, 'write -P 0x3d 0 1M');
  // Through the operator commands: the newcomer rebuilds to RW, the removed one's data goes.
  const grown = triremeJson<VolumeMessage>(data(['replica', 'add', 'v2']));
  remember(grown);
  assert.equal(grown.replicaCount, 3);
  await until('new replica RW', () => status('v2'), (v) => v.status?.replicas.length === 3 && v.status.replicas.every((r) => r.mode === 'RW'), 60_000);
  const shrunk = triremeJson<VolumeMessage>(data(['replica', 'rm', 'v2', '0']));
  assert.deepEqual(shrunk.replicas.map((r) => r.index), [1, 2]);
  assert.equal(shrunk.status?.replicas.length, 2);
  qemuIo(v2url, 'read -P 0x3d 0 1M');
  const badIndex = trireme(data(['replica', 'rm', 'v2', '7', '--json']));
  assert.equal(JSON.parse(badIndex.stdout).error.code, 'ERR_REPLICA_NOT_FOUND');

  // Revert: no initiator stays logged in between qemu-io runs, so the volume is detached.
  qemuIo(v2url, 'write -P 0x5e 0 1M');
  assert.equal(triremeJson<SnapshotView>(data(['snapshot', 'create', 'v2', 'second'])).name, 'second');
  qemuIo(v2url, 'write -P 0x6f 0 1M');
  triremeJson<VolumeMessage>(data(['snapshot', 'revert', 'v2', 'second']));
  qemuIo(v2url, 'read -P 0x5e 0 1M');
  // A replica added after the revert: the reverted logs cannot be truncated, yet the
  // reopened controller reaches quorum and rebuilds the newcomer in full.
  const regrown = triremeJson<VolumeMessage>(data(['replica', 'add', 'v2']));
  remember(regrown);
  await until('replica added after a revert RW', () => status('v2'), (v) => v.status?.replicas.length === 3 && v.status.replicas.every((r) => r.mode === 'RW'), 60_000);
  qemuIo(v2url, 'read -P 0x5e 0 1M');
  assert.deepEqual(triremeJson<{ deleted: string }>(data(['snapshot', 'rm', 'v2', 'first'])), { volume: 'v2', deleted: 'first' });
  assert.deepEqual(triremeJson<SnapshotView[]>(data(['snapshot', 'ls', 'v2'])).map((s) => s.name), ['second']);
  const noSnap = trireme(data(['snapshot', 'rm', 'v2', 'first', '--json']));
  assert.equal(JSON.parse(noSnap.stdout).error.code, 'ERR_SNAPSHOT_NOT_FOUND');

  // Clear errors: unknown volume, impossible size, duplicate name.
  const unknown = trireme(data(['volume', 'status', 'nope', '--json']));
  assert.equal(unknown.status, 1);
  assert.equal(JSON.parse(unknown.stdout).error.code, 'ERR_VOLUME_NOT_FOUND');
  const tooSmall = trireme(data(['volume', 'create', 'tiny', '--size', '4K', '--json']));
  assert.equal(tooSmall.status, 1);
  assert.equal(JSON.parse(tooSmall.stdout).error.code, 'ERR_INVALID_ARGUMENT');
  const duplicate = trireme(data(['volume', 'create', 'v2', '--size', '64M', '--json']));
  assert.equal(JSON.parse(duplicate.stdout).error.code, 'ERR_ALREADY_EXISTS');
  const text = trireme(data(['volume', 'status', 'demo']));
  assert.equal(text.status, 0);
  assert.match(text.stdout, /volume demo\s+1 GiB\s+healthy/);
  assert.match(text.stdout, /RW/);

  assert.deepEqual(triremeJson<{ deleted: string }>(data(['volume', 'rm', 'v2'])), { deleted: 'v2' });
  assert.deepEqual(triremeJson<VolumeMessage[]>(data(['volume', 'ls'])).map((v) => v.name), ['demo']);
  for (const r of [...created.replicas, ...grown.replicas, ...regrown.replicas]) await until(`v2 replica ${r.index} gone`, () => isAlive(r.process.pid), (alive) => !alive, 20_000);

  // SIGKILL a replica child: the orchestrator restarts it, it rebuilds to RW.
  const victim = demo.replicas[1];
  process.kill(victim.process.pid, 'SIGKILL');
  qemuIo(url, 'write -P 0xb8 8M 1M');
  const restarted = await until('replica restarted', () => status('demo'), (v) => v.replicas[1].process.restarts >= 1 && v.replicas[1].process.state === 'running');
  remember(restarted);
  assert.equal(restarted.replicas[1].process.lastExit, 'signal SIGKILL');
  await until('rebuilt to RW', () => status('demo'), (v) => v.status?.state === 'healthy' && (v.status?.replicas.every((r) => r.mode === 'RW') ?? false), 120_000);
  qemuIo(url, 'read -P 0xb8 8M 1M');

  // SIGKILL the controller: restarted by the orchestrator, it takes the volume back at a higher epoch.
  const beforeKill = status('demo');
  process.kill(beforeKill.controller.pid, 'SIGKILL');
  const recovered = await until('controller back', () => status('demo'), (v) => v.controller.restarts >= 1 && v.status?.state === 'healthy', 90_000);
  remember(recovered);
  assert.ok((recovered.status?.epoch ?? 0) > (beforeKill.status?.epoch ?? 0), 'a new controller raises the epoch');
  qemuIo(url, 'read -P 0xb8 8M 1M');

  // Restart the stack: records and data stay, children are not left behind.
  const before = status('demo');
  await stopProcess(up);
  up = undefined;
  for (const pid of [before.controller.pid, ...before.replicas.map((r) => r.process.pid)]) assert.equal(isAlive(pid), false, `child ${pid} outlived the manager`);
  const again = await startTrireme(upArgs, /manage volumes with/, 120_000);
  up = again.child;
  const back = await until('demo back', () => status('demo'), (v) => v.status?.state === 'healthy');
  remember(back);
  assert.equal(back.createdAt, demo.createdAt);
  assert.deepEqual(back.replicas.map((r) => r.address), demo.replicas.map((r) => r.address));
  qemuIo(url, 'read -P 0xa7 1M 2M');
  qemuIo(url, 'read -P 0xb8 8M 1M');
});

test('operator commands without a manager fail clearly', () => {
  const empty = mkdtempSync(join(tmpdir(), 'trireme-nomanager-'));
  try {
    const result = trireme(['volume', 'ls', '--data', empty, '--json']);
    assert.equal(result.status, 1, result.stderr);
    assert.notEqual(result.stdout, '', `no JSON error on stdout; stderr: ${result.stderr}`);
    assert.equal(JSON.parse(result.stdout).error.code, 'ERR_MANAGER_NOT_RUNNING');
    assert.match(result.stderr, /the manager is not running .* start it with `trireme up/);
  } finally {
    rmSync(empty, { recursive: true, force: true });
  }
});
