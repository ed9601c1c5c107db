import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { requireTools } from '../support/host-tools';
import { MiB, mountCapability, mountsUnder, NODE_TOOLS, startNodePlugin, volumeContext, type NodePlugin } from './support/node-harness';

let plugin: NodePlugin;

/** CAP_SYS_RESOURCE (capability 24) in this process's effective set. */
function hasCapSysResource(): boolean {
  const line = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('CapEff:'));
  return line !== undefined && (BigInt(`0x${line.split(/\s+/)[1]}`) & (1n << 24n)) !== 0n;
}

before(async () => {
  plugin = await startNodePlugin();
});

after(async () => {
  await plugin?.close();
});

/**
 * The whole life of a filesystem volume on a real loop device: stage (mkfs,
 * mount), stage again, publish rw and ro, write through one and see it refused
 * on the other, stats, grow the backing file and expand online, unpublish and
 * unstage, each twice.
 */
async function filesystemLifecycle(fsType: 'ext4' | 'xfs', initialBytes: number, grownBytes: number): Promise<void> {
  const iqn = `iqn.2026-01.io.trireme:${fsType}-life`;
  const volumeId = `vol-${fsType}`;
  const file = plugin.addVolume(iqn, initialBytes);
  const staging = join(plugin.dir, `${fsType}-staging`);
  const rw = join(plugin.dir, `${fsType}-pod-rw`, 'mount');
  const ro = join(plugin.dir, `${fsType}-pod-ro`, 'mount');
  const cap = mountCapability(fsType, ['noatime']);
  const stage = { volume_id: volumeId, staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn) };

  await plugin.client.call('Node', 'NodeStageVolume', stage);
  const staged = mountsUnder(staging);
  assert.equal(staged.length, 1);
  assert.equal(staged[0].fsType, fsType);
  assert.ok(staged[0].options.includes('noatime'), `mount flags applied: ${staged[0].options.join(',')}`);
  assert.equal(execFileSync('blkid', ['-p', '-o', 'value', '-s', 'TYPE', plugin.acquirer.loopDevicesOf(file)[0]], { encoding: 'utf8' }).trim(), fsType);

  // Repeat: same mount, no second filesystem, no second mount.
  await plugin.client.call('Node', 'NodeStageVolume', stage);
  assert.equal(mountsUnder(staging).length, 1);

  const publish = { volume_id: volumeId, staging_target_path: staging, volume_capability: cap, volume_context: volumeContext(iqn) };
  await plugin.client.call('Node', 'NodePublishVolume', { ...publish, target_path: rw, readonly: false });
  await plugin.client.call('Node', 'NodePublishVolume', { ...publish, target_path: rw, readonly: false });
  await plugin.client.call('Node', 'NodePublishVolume', { ...publish, target_path: ro, readonly: true });
  writeFileSync(join(rw, 'hello.txt'), 'written through the rw bind mount');
  assert.equal(readFileSync(join(ro, 'hello.txt'), 'utf8'), 'written through the rw bind mount');
  assert.throws(() => writeFileSync(join(ro, 'nope.txt'), 'x'), { code: 'EROFS' });
  assert.equal(mountsUnder(rw).length, 1);

  const stats = await plugin.client.call<{ usage: Array<{ unit: string; total: number; available: number; used: number }>; volume_condition: { abnormal: boolean } }>(
    'Node',
    'NodeGetVolumeStats',
    { volume_id: volumeId, volume_path: rw },
  );
  const bytes = stats.usage.find((u) => u.unit === 'BYTES');
  const inodes = stats.usage.find((u) => u.unit === 'INODES');
  const real = statfsSync(rw);
  assert.ok(bytes && inodes);
  assert.equal(bytes.total, real.blocks * real.bsize);
  assert.ok(bytes.total > 0.7 * initialBytes && bytes.total <= initialBytes, `total ${bytes.total} vs device ${initialBytes}`);
  assert.ok(bytes.used > 0 && bytes.available > 0);
  assert.equal(inodes.total, real.files);
  assert.ok(inodes.used >= 1);
  assert.equal(stats.volume_condition.abnormal, false);

  // Online expansion: the backing file grows (what a target resize does), the
  // acquirer rescans (losetup -c) and the filesystem follows.
  truncateSync(file, grownBytes);
  const expand = {
    volume_id: volumeId,
    volume_path: rw,
    staging_target_path: staging,
    capacity_range: { required_bytes: grownBytes },
    volume_capability: cap,
  };
  if (fsType === 'ext4' && !hasCapSysResource()) {
    // ext4's online resize ioctl demands CAP_SYS_RESOURCE (fs/ext4/ioctl.c),
    // which some container sandboxes drop. The call must then fail with the
    // tool's reason and leave the volume as it was.
    await assert.rejects(plugin.client.call('Node', 'NodeExpandVolume', expand), (err: Error & { code: number }) => {
      assert.equal(err.code, status.INTERNAL);
      assert.match(err.message, /resize2fs .*Permission denied/);
      return true;
    });
    assert.equal(statfsSync(rw).blocks, real.blocks);
  } else {
    const expanded = await plugin.client.call<{ capacity_bytes: number }>('Node', 'NodeExpandVolume', expand);
    assert.equal(expanded.capacity_bytes, grownBytes);
    const grown = statfsSync(rw);
    assert.ok(grown.blocks * grown.bsize > real.blocks * real.bsize + (grownBytes - initialBytes) / 2, 'filesystem grew with its device');
  }
  assert.ok(plugin.acquirer.rescanCount > 0, 'the device was rescanned');
  assert.equal(readFileSync(join(rw, 'hello.txt'), 'utf8'), 'written through the rw bind mount');

  for (const target of [rw, ro]) {
    await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target });
    await plugin.client.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target });
    assert.equal(mountsUnder(target).length, 0);
    assert.equal(existsSync(target), false, 'the plugin removes the target path it created');
  }
  const detachesBefore = plugin.acquirer.detachCount;
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
  assert.equal(mountsUnder(staging).length, 0);
  assert.deepEqual(plugin.acquirer.loopDevicesOf(file), [], 'device released');
  assert.equal(plugin.acquirer.detachCount, detachesBefore + 1, 'the second unstage finds nothing to detach');

  // Staging again finds the filesystem (no mkfs) and the data on it.
  await plugin.client.call('Node', 'NodeStageVolume', stage);
  assert.equal(readFileSync(join(staging, 'hello.txt'), 'utf8'), 'written through the rw bind mount');
  await plugin.client.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
}

test('ext4 volume: stage, publish rw/ro, stats, online expand, unpublish, unstage (each repeated)', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  await filesystemLifecycle('ext4', 64 * MiB, 96 * MiB);
});

test('xfs volume: stage, publish rw/ro, stats, online expand, unpublish, unstage (each repeated)', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  // mkfs.xfs refuses filesystems under 300 MiB; the files are sparse.
  await filesystemLifecycle('xfs', 320 * MiB, 400 * MiB);
});
