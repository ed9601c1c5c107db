import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { requireTools } from '../support/host-tools';
import { grpcStatus } from './support/csi-client';
import { MiB, mountCapability, mountsUnder, NODE_TOOLS, startNodePlugin, volumeContext, type NodePlugin } from './support/node-harness';

let plugin: NodePlugin;

before(async () => {
  plugin = await startNodePlugin({ deviceTimeoutMs: 1500 });
});

after(async () => {
  await plugin?.close();
});

const cap = mountCapability('ext4');

test('identity: plugin info, capabilities and a probe that runs the host tools', async () => {
  const info = await plugin.client.call<{ name: string; vendor_version: string }>('Identity', 'GetPluginInfo');
  assert.deepEqual([info.name, info.vendor_version], ['csi.trireme.io', '0.0.0-test']);
  const caps = await plugin.client.call<{ capabilities: Array<{ service?: { type: string }; volume_expansion?: { type: string } }> }>('Identity', 'GetPluginCapabilities');
  assert.deepEqual(
    caps.capabilities.map((c) => c.service?.type ?? `expansion:${c.volume_expansion?.type}`),
    ['VOLUME_ACCESSIBILITY_CONSTRAINTS', 'expansion:ONLINE'],
    'a node-only plugin does not claim the controller service',
  );
  const probe = await plugin.client.call<{ ready: { value: boolean } }>('Identity', 'Probe');
  assert.equal(probe.ready.value, true);
});

test('NodeGetInfo and NodeGetCapabilities', async () => {
  const info = await plugin.client.call<{ node_id: string; max_volumes_per_node: number; accessible_topology: { segments: Record<string, string> } }>('Node', 'NodeGetInfo');
  assert.equal(info.node_id, 'node-a');
  assert.equal(info.max_volumes_per_node, 64);
  assert.deepEqual(info.accessible_topology.segments, { 'topology.csi.trireme.io/node': 'node-a' });
  const caps = await plugin.client.call<{ capabilities: Array<{ rpc: { type: string } }> }>('Node', 'NodeGetCapabilities');
  assert.deepEqual(caps.capabilities.map((c) => c.rpc.type).sort(), ['EXPAND_VOLUME', 'GET_VOLUME_STATS', 'SINGLE_NODE_MULTI_WRITER', 'STAGE_UNSTAGE_VOLUME', 'VOLUME_CONDITION']);
});

test('missing required fields are INVALID_ARGUMENT naming the field', async () => {
  const staging = join(plugin.dir, 'x');
  const cases: Array<[string, object, string]> = [
    ['NodeStageVolume', { staging_target_path: staging, volume_capability: cap }, 'volume_id'],
    ['NodeStageVolume', { volume_id: 'v', volume_capability: cap }, 'staging_target_path'],
    ['NodeStageVolume', { volume_id: 'v', staging_target_path: staging }, 'volume_capability'],
    ['NodeUnstageVolume', { volume_id: 'v' }, 'staging_target_path'],
    ['NodePublishVolume', { volume_id: 'v', staging_target_path: staging, volume_capability: cap }, 'target_path'],
    ['NodeUnpublishVolume', { target_path: staging }, 'volume_id'],
    ['NodeGetVolumeStats', { volume_id: 'v' }, 'volume_path'],
    ['NodeExpandVolume', { volume_id: 'v' }, 'volume_path'],
  ];
  for (const [method, request, field] of cases) {
    await assert.rejects(plugin.client.call('Node', method, request), (err: Error & { code: number }) => {
      assert.equal(err.code, status.INVALID_ARGUMENT, method);
      assert.match(err.message, new RegExp(`${method}: ${field} is required`));
      return true;
    });
  }
});

test('relative paths and paths with .. are INVALID_ARGUMENT', async () => {
  const calls: Array<[string, object]> = [
    ['NodeStageVolume', { volume_id: 'v', staging_target_path: 'relative/staging', volume_capability: cap, volume_context: volumeContext('iqn.2026-01.io.trireme:x') }],
    ['NodeUnstageVolume', { volume_id: 'v', staging_target_path: '/var/lib/../../etc' }],
    ['NodePublishVolume', { volume_id: 'v', staging_target_path: '/s', target_path: 'pods/x', volume_capability: cap }],
    ['NodeUnpublishVolume', { volume_id: 'v', target_path: '../x' }],
    ['NodeGetVolumeStats', { volume_id: 'v', volume_path: 'x' }],
    ['NodeExpandVolume', { volume_id: 'v', volume_path: '/a/../b' }],
  ];
  for (const [method, request] of calls) {
    await assert.rejects(plugin.client.call('Node', method, request), (err: Error & { code: number }) => err.code === status.INVALID_ARGUMENT && /must be an absolute path/.test(err.message));
  }
});

test('bad volume context, capability or secrets are INVALID_ARGUMENT and touch nothing', async () => {
  const base = { volume_id: 'bad', staging_target_path: join(plugin.dir, 'bad'), volume_capability: cap };
  const bad: object[] = [
    { ...base, volume_context: { iqn: 'iqn.2026-01.io.trireme:x', lun: '0' } },
    { ...base, volume_context: { ...volumeContext('not-an-iqn') } },
    { ...base, volume_context: { ...volumeContext('iqn.2026-01.io.trireme:x'), lun: '-1' } },
    { ...base, volume_context: volumeContext('iqn.2026-01.io.trireme:x'), volume_capability: mountCapability('btrfs') },
    { ...base, volume_context: volumeContext('iqn.2026-01.io.trireme:x'), volume_capability: { mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } } },
    { ...base, volume_context: volumeContext('iqn.2026-01.io.trireme:x'), volume_capability: mountCapability('ext4', ['ro,exec']) },
    { ...base, volume_context: volumeContext('iqn.2026-01.io.trireme:x'), secrets: { chapUser: 'u' } },
  ];
  const attaches = plugin.acquirer.attachCount;
  for (const request of bad) await assert.rejects(plugin.client.call('Node', 'NodeStageVolume', request), grpcStatus(status.INVALID_ARGUMENT));
  assert.equal(plugin.acquirer.attachCount, attaches, 'nothing was attached');
});

test('publish before stage is FAILED_PRECONDITION; stats on a missing path NOT_FOUND, on an unmounted one abnormal', async () => {
  await assert.rejects(
    plugin.client.call('Node', 'NodePublishVolume', { volume_id: 'never', staging_target_path: join(plugin.dir, 'n'), target_path: join(plugin.dir, 'nt'), volume_capability: cap }),
    grpcStatus(status.FAILED_PRECONDITION),
  );
  await assert.rejects(plugin.client.call('Node', 'NodeGetVolumeStats', { volume_id: 'never', volume_path: join(plugin.dir, 'no-such') }), grpcStatus(status.NOT_FOUND));
  mkdirSync(join(plugin.dir, 'empty-dir'));
  const stats = await plugin.client.call<{ volume_condition: { abnormal: boolean; message: string } }>('Node', 'NodeGetVolumeStats', {
    volume_id: 'never',
    volume_path: join(plugin.dir, 'empty-dir'),
  });
  assert.equal(stats.volume_condition.abnormal, true);
  assert.match(stats.volume_condition.message, /not mounted/);
  await assert.rejects(plugin.client.call('Node', 'NodeExpandVolume', { volume_id: 'never', volume_path: join(plugin.dir, 'empty-dir') }), grpcStatus(status.NOT_FOUND));
});

test('a device that never appears is NOT_FOUND after the bounded wait', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:slow';
  plugin.addVolume(iqn, 8 * MiB);
  plugin.acquirer.linkDelayMs = 60_000;
  try {
    const started = Date.now();
    const staging = join(plugin.dir, 'slow');
    await assert.rejects(plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'slow', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn) }), grpcStatus(status.NOT_FOUND));
    assert.ok(Date.now() - started < 10_000);
    // The half-done stage is undone by unstage: the state was recorded before the attach.
    await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'slow', staging_target_path: staging });
    assert.deepEqual(plugin.acquirer.loopDevicesOf(plugin.acquirer.files.get(iqn) as string), []);
  } finally {
    plugin.acquirer.linkDelayMs = 150;
  }
});

test('concurrent calls on one volume: the second is ABORTED, the first completes', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:race';
  plugin.addVolume(iqn, 32 * MiB);
  const staging = join(plugin.dir, 'race');
  const request = { volume_id: 'race', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn) };
  const results = await Promise.allSettled([plugin.client.call('Node', 'NodeStageVolume', request), plugin.client.call('Node', 'NodeStageVolume', request)]);
  assert.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  const rejected = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
  assert.equal((rejected.reason as { code: number }).code, status.ABORTED);
  assert.equal(mountsUnder(staging).length, 1);
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'race', staging_target_path: staging });
});

test('crash half-way: a staging mount that was lost is remounted by a repeated stage, without mkfs, data kept', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:crash';
  plugin.addVolume(iqn, 32 * MiB);
  const staging = join(plugin.dir, 'crash');
  const request = { volume_id: 'crash', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn) };
  await plugin.client.call('Node', 'NodeStageVolume', request);
  writeFileSync(join(staging, 'keep.txt'), 'survives');
  // As if the plugin died after login and mkfs but the mount went away (node reboot, manual umount).
  execFileSync('umount', [staging]);
  await plugin.client.call('Node', 'NodeStageVolume', request);
  assert.equal(readFileSync(join(staging, 'keep.txt'), 'utf8'), 'survives');

  // Unstage while still published elsewhere is refused and keeps the session.
  const target = join(plugin.dir, 'crash-pod');
  await plugin.client.call('Node', 'NodePublishVolume', { ...request, target_path: target });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'crash', staging_target_path: staging }).then(
    () => assert.fail('unstage must refuse while published'),
    (err: { code: number }) => assert.equal(err.code, status.FAILED_PRECONDITION),
  );
  await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: 'crash', target_path: target });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'crash', staging_target_path: staging });
  assert.equal(mountsUnder(staging).length, 0);
});

test('staging path already holding another volume is ALREADY_EXISTS; publishing ro over rw is ALREADY_EXISTS', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  plugin.addVolume('iqn.2026-01.io.trireme:one', 32 * MiB);
  plugin.addVolume('iqn.2026-01.io.trireme:two', 32 * MiB);
  const staging = join(plugin.dir, 'shared-staging');
  await plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'one', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext('iqn.2026-01.io.trireme:one') });
  await assert.rejects(
    plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'two', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext('iqn.2026-01.io.trireme:two') }),
    grpcStatus(status.ALREADY_EXISTS),
  );
  const target = join(plugin.dir, 'one-pod');
  const publish = { volume_id: 'one', staging_target_path: staging, target_path: target, volume_capability: cap, volume_context: volumeContext('iqn.2026-01.io.trireme:one') };
  await plugin.client.call('Node', 'NodePublishVolume', publish);
  await assert.rejects(plugin.client.call('Node', 'NodePublishVolume', { ...publish, readonly: true }), grpcStatus(status.ALREADY_EXISTS));
  await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: 'one', target_path: target });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'one', staging_target_path: staging });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'two', staging_target_path: join(plugin.dir, 'two-staging') });
  rmSync(join(plugin.dir, 'empty-dir'), { recursive: true, force: true });
});

test('a filesystem that shut down after an I/O error is reported abnormal, and still unpublishes and unstages', async (t) => {
  if (!requireTools(t, { ...NODE_TOOLS, xfs_io: 'xfsprogs' })) return;
  const iqn = 'iqn.2026-01.io.trireme:shutdown';
  plugin.addVolume(iqn, 320 * MiB);
  const staging = join(plugin.dir, 'shutdown-staging');
  const target = join(plugin.dir, 'shutdown-pod');
  const xfs = mountCapability('xfs');
  const request = { volume_id: 'shutdown', staging_target_path: staging, volume_capability: xfs, volume_context: volumeContext(iqn) };
  await plugin.client.call('Node', 'NodeStageVolume', request);
  await plugin.client.call('Node', 'NodePublishVolume', { ...request, target_path: target });
  const healthy = await plugin.client.call<{ volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', { volume_id: 'shutdown', volume_path: target });
  assert.equal(healthy.volume_condition.abnormal, false);
  // XFS_IOC_GOINGDOWN: what xfs does by itself when its device returns I/O errors.
  execFileSync('xfs_io', ['-x', '-c', 'shutdown', staging]);
  const sick = await plugin.client.call<{ usage: unknown[]; volume_condition: { abnormal: boolean; message: string } }>('Node', 'NodeGetVolumeStats', { volume_id: 'shutdown', volume_path: target });
  assert.equal(sick.volume_condition.abnormal, true);
  assert.match(sick.volume_condition.message, /Input\/output error/);
  assert.deepEqual(sick.usage, []);
  await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: 'shutdown', target_path: target });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'shutdown', staging_target_path: staging });
  assert.equal(mountsUnder(staging).length, 0);
});

test('two LUNs of one target share the session: it is closed only when the last of them is unstaged', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:two-luns';
  plugin.addVolume(`${iqn}#0`, 16 * MiB);
  plugin.addVolume(`${iqn}#1`, 16 * MiB);
  const stage = (lun: number): object => ({
    volume_id: `lun-${lun}`,
    staging_target_path: join(plugin.dir, `lun-${lun}`),
    volume_capability: cap,
    volume_context: { ...volumeContext(iqn), lun: String(lun) },
  });
  await plugin.client.call('Node', 'NodeStageVolume', stage(0));
  await plugin.client.call('Node', 'NodeStageVolume', stage(1));
  const detaches = plugin.acquirer.detachCount;
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'lun-0', staging_target_path: join(plugin.dir, 'lun-0') });
  assert.equal(plugin.acquirer.detachCount, detaches, 'LUN 1 still uses the session');
  assert.equal(plugin.acquirer.loopDevicesOf(plugin.acquirer.files.get(`${iqn}#1`) as string).length, 1);
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'lun-1', staging_target_path: join(plugin.dir, 'lun-1') });
  assert.equal(plugin.acquirer.detachCount, detaches + 1);
  for (const lun of [0, 1]) assert.deepEqual(plugin.acquirer.loopDevicesOf(plugin.acquirer.files.get(`${iqn}#${lun}`) as string), []);
});

test('CHAP credentials from the node-stage secrets reach the device acquisition', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:chap';
  plugin.addVolume(iqn, 16 * MiB);
  const staging = join(plugin.dir, 'chap');
  const secrets = { chapUser: 'pvc-chap', chapSecret: 'twelve-bytes-or-more', chapMutualUser: 'target', chapMutualSecret: 'another-secret-value' };
  await plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'chap', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn), secrets });
  assert.deepEqual(plugin.acquirer.lastChap, { user: 'pvc-chap', secret: 'twelve-bytes-or-more', mutualUser: 'target', mutualSecret: 'another-secret-value' });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'chap', staging_target_path: staging });
  await assert.rejects(
    plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'chap', staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn), secrets: { ...secrets, chapMutualSecret: '' } }),
    grpcStatus(status.INVALID_ARGUMENT),
  );
});

test('a device that already holds data is never reformatted: another filesystem is mounted as it is, anything else refused', async (t) => {
  if (!requireTools(t, { ...NODE_TOOLS, mkswap: 'util-linux' })) return;
  const extFile = plugin.addVolume('iqn.2026-01.io.trireme:has-ext4', 32 * MiB);
  execFileSync('mkfs.ext4', ['-q', '-F', extFile]);
  const staging = join(plugin.dir, 'has-ext4');
  await plugin.client.call('Node', 'NodeStageVolume', {
    volume_id: 'has-ext4',
    staging_target_path: staging,
    volume_capability: mountCapability('xfs'),
    volume_context: volumeContext('iqn.2026-01.io.trireme:has-ext4'),
  });
  assert.equal(mountsUnder(staging)[0]?.fsType, 'ext4', 'the existing ext4 is mounted, not replaced by xfs');
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'has-ext4', staging_target_path: staging });

  const swapFile = plugin.addVolume('iqn.2026-01.io.trireme:has-swap', 32 * MiB);
  execFileSync('mkswap', [swapFile], { stdio: 'ignore' });
  const swapStaging = join(plugin.dir, 'has-swap');
  await assert.rejects(
    plugin.client.call('Node', 'NodeStageVolume', { volume_id: 'has-swap', staging_target_path: swapStaging, volume_capability: cap, volume_context: volumeContext('iqn.2026-01.io.trireme:has-swap') }),
    (err: Error & { code: number }) => err.code === status.FAILED_PRECONDITION && /holds swap/.test(err.message),
  );
  assert.equal(mountsUnder(swapStaging).length, 0);
  assert.match(execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', swapFile], { encoding: 'utf8' }), /swap/, 'the swap signature is untouched');
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'has-swap', staging_target_path: swapStaging });
});
