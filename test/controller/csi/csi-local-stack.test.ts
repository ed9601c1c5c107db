import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { requireTools } from '../../support/host-tools';
import { LocalCsiProcess } from './local-csi-process';

// `trireme csi --mode controller` with the local orchestrator: CSI calls make
// real volumes (a controller and three replica processes each), checked from
// outside with libiscsi and qemu-io at the portal and IQN of the volume context.
const dir = mkdtempSync(join(tmpdir(), 'trireme-csi-stack-'));
let stack: LocalCsiProcess | undefined;

after(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;

test('CSI controller over the local orchestrator: a real volume answers at its volume context, grows, snapshots and goes away', { timeout: 120_000 }, async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils', 'iscsi-readcapacity16': 'libiscsi-bin' })) return;
  const base = 20_000 + Math.floor(Math.random() * 200) * 50;
  stack = await LocalCsiProcess.start(dir, base);
  const { client } = stack;
  try {
    const { volume } = await client.call<{ volume: { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
      name: 'pvc-stack',
      capacity_range: { required_bytes: 64 * MiB + 1 },
      volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      parameters: { replicaCount: '3' },
    });
    assert.equal(volume.capacity_bytes, 65 * MiB);
    const { portal, iqn, lun } = volume.volume_context;
    const url = `iscsi://${portal}/${iqn}/${lun}`;
    assert.equal(execFileSync('iscsi-readcapacity16', ['-s', url], { encoding: 'utf8' }).trim(), String(65 * MiB));
    const io = execFileSync('qemu-io', ['-f', 'raw', '-c', 'write -P 0x5a 0 1M', '-c', 'read -P 0x5a 0 1M', url], { encoding: 'utf8' });
    assert.match(io, /read 1048576\/1048576 bytes/);

    // CLONE_VOLUME is advertised exactly when the orchestrator can clone.
    const caps = await client.call<{ capabilities: Array<{ rpc: { type: string } }> }>('Controller', 'ControllerGetCapabilities');
    const clone = client.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', {
      name: 'pvc-stack-clone',
      capacity_range: { required_bytes: 65 * MiB },
      volume_capabilities: [{ mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }],
      volume_content_source: { volume: { volume_id: volume.volume_id } },
    });
    if (caps.capabilities.some((c) => c.rpc.type === 'CLONE_VOLUME')) {
      await client.call('Controller', 'DeleteVolume', { volume_id: (await clone).volume.volume_id });
    } else {
      await assert.rejects(clone, (err: { code: number }) => err.code === status.UNIMPLEMENTED);
    }
    const got = await client.call<{ status: { volume_condition: { abnormal: boolean } } }>('Controller', 'ControllerGetVolume', { volume_id: volume.volume_id });
    assert.equal(got.status.volume_condition.abnormal, false);
    const snap = await client.call<{ snapshot: { snapshot_id: string; ready_to_use: boolean; source_volume_id: string } }>('Controller', 'CreateSnapshot', { name: 'snap-1', source_volume_id: volume.volume_id });
    assert.equal(snap.snapshot.ready_to_use, true);
    assert.equal(snap.snapshot.source_volume_id, volume.volume_id);

    const grown = await client.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: 128 * MiB } });
    assert.deepEqual(grown, { capacity_bytes: 128 * MiB, node_expansion_required: true });
    assert.equal(execFileSync('iscsi-readcapacity16', ['-s', url], { encoding: 'utf8' }).trim(), String(128 * MiB), 'the target reports the new size');

    await client.call('Controller', 'DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
    await client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
    await client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
    assert.deepEqual((await client.call<{ entries: unknown[] }>('Controller', 'ListVolumes')).entries, []);
  } finally {
    client.close();
  }
  assert.equal(await stack.stop(), 0, stack.output().slice(-2000));
});
