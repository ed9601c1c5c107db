import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTools } from '../support/host-tools';
import { blockCapability, MiB, mountsUnder, NODE_TOOLS, startNodePlugin, volumeContext, type NodePlugin } from './support/node-harness';

let plugin: NodePlugin;

before(async () => {
  plugin = await startNodePlugin();
});

after(async () => {
  await plugin?.close();
});

test('raw block volume: the device node is bind-mounted at the target, rw and ro, with size stats and expand', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const iqn = 'iqn.2026-01.io.trireme:raw';
  const file = plugin.addVolume(iqn, 16 * MiB);
  const staging = join(plugin.dir, 'raw-staging');
  const target = join(plugin.dir, 'pods', 'raw-dev');
  const roTarget = join(plugin.dir, 'pods', 'raw-dev-ro');
  const base = { volume_id: 'vol-raw', staging_target_path: staging, volume_capability: blockCapability(), volume_context: volumeContext(iqn) };

  await plugin.client.call('Node', 'NodeStageVolume', base);
  await plugin.client.call('Node', 'NodeStageVolume', base);
  assert.equal(mountsUnder(staging).length, 0, 'a block volume is not mounted at staging');
  const loop = plugin.acquirer.loopDevicesOf(file);
  assert.equal(loop.length, 1);

  await plugin.client.call('Node', 'NodePublishVolume', { ...base, target_path: target, readonly: false });
  await plugin.client.call('Node', 'NodePublishVolume', { ...base, target_path: target, readonly: false });
  await plugin.client.call('Node', 'NodePublishVolume', { ...base, target_path: roTarget, readonly: true });
  assert.ok(statSync(target).isBlockDevice());
  assert.equal(mountsUnder(target).length, 1);

  // Write a pattern through the published device node, read it back through the loop device.
  execFileSync('dd', ['if=/dev/urandom', `of=${join(plugin.dir, 'pattern')}`, 'bs=4096', 'count=4', 'status=none']);
  execFileSync('dd', [`if=${join(plugin.dir, 'pattern')}`, `of=${target}`, 'bs=4096', 'count=4', 'oflag=direct', 'status=none']);
  const back = execFileSync('dd', [`if=${loop[0]}`, 'bs=4096', 'count=4', 'iflag=direct', 'status=none']);
  assert.deepEqual(back, execFileSync('cat', [join(plugin.dir, 'pattern')]));
  // MNT_READONLY does not stop writes through a device node (may_open() skips the
  // mount's write check for block devices): for raw block volumes the container
  // runtime enforces read-only through device-cgroup permissions. The plugin's
  // part is the ro flag on the bind mount, which is checked here.
  assert.ok(mountsUnder(roTarget)[0].options.includes('ro'));
  assert.ok(!mountsUnder(target)[0].options.includes('ro'));

  const stats = await plugin.client.call<{ usage: Array<{ unit: string; total: number }>; volume_condition: { abnormal: boolean } }>('Node', 'NodeGetVolumeStats', {
    volume_id: 'vol-raw',
    volume_path: target,
  });
  assert.deepEqual(stats.usage.map((u) => [u.unit, u.total]), [['BYTES', 16 * MiB]]);
  assert.equal(stats.volume_condition.abnormal, false);

  execFileSync('truncate', ['-s', `${24 * MiB}`, file]);
  const expanded = await plugin.client.call<{ capacity_bytes: number }>('Node', 'NodeExpandVolume', { volume_id: 'vol-raw', volume_path: target, volume_capability: blockCapability() });
  assert.equal(expanded.capacity_bytes, 24 * MiB);

  for (const path of [target, roTarget]) {
    await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-raw', target_path: path });
    await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: 'vol-raw', target_path: path });
    assert.equal(existsSync(path), false);
  }
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'vol-raw', staging_target_path: staging });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: 'vol-raw', staging_target_path: staging });
  assert.deepEqual(plugin.acquirer.loopDevicesOf(file), []);
});
