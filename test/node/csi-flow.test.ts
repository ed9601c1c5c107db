import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statfsSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { identityService, startCsiServer, type RunningCsiServer } from '../../src/common/csi';
import { silentLogger } from '../../src/common/logger';
import { controllerService, type ContentSource, type OrchestratedVolume, type VolumeParameters } from '../../src/controller/csi';
import { createExecutor, nodeService } from '../../src/node';
import { MemoryOrchestrator } from '../controller/csi/memory-orchestrator';
import { requireTools } from '../support/host-tools';
import { CsiTestClient } from './support/csi-client';
import { LoopAcquirer } from './support/loop-acquirer';
import { MiB, mountsUnder, NODE_TOOLS } from './support/node-harness';

/**
 * The in-memory orchestrator, with each volume backed by a sparse file that the
 * loop acquirer attaches under the volume's IQN: so the volume context the
 * controller returns is exactly what the node stages from.
 */
class FileBackedOrchestrator extends MemoryOrchestrator {
  constructor(
    private readonly dir: string,
    private readonly acquirer: LoopAcquirer,
  ) {
    super(1024 * MiB * 100, 1024 * MiB * 16);
  }

  override async createVolume(name: string, sizeBytes: number, params: VolumeParameters, source?: ContentSource): Promise<OrchestratedVolume> {
    const volume = await super.createVolume(name, sizeBytes, params, source);
    const file = join(this.dir, `${volume.volumeId}.img`);
    if (!this.acquirer.files.has(volume.iqn)) {
      writeFileSync(file, '');
      truncateSync(file, volume.sizeBytes);
      this.acquirer.files.set(volume.iqn, file);
    }
    return volume;
  }

  override async expandVolume(volumeId: string, sizeBytes: number): Promise<OrchestratedVolume> {
    const volume = await super.expandVolume(volumeId, sizeBytes);
    truncateSync(this.acquirer.files.get(volume.iqn) as string, volume.sizeBytes);
    return volume;
  }
}

let dir: string;
let server: RunningCsiServer;
let client: CsiTestClient;
let acquirer: LoopAcquirer;

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trireme-csi-flow-'));
  const logger = silentLogger();
  acquirer = new LoopAcquirer(join(dir, 'by-path'));
  const orchestrator = new FileBackedOrchestrator(dir, acquirer);
  const executor = createExecutor('direct', logger);
  server = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: 'test', controllerService: true, readinessChecks: [], logger }),
    controller: controllerService(orchestrator),
    node: nodeService({ nodeId: 'n1', maxVolumesPerNode: 0, executor, acquirer, stateDir: join(dir, 'state'), deviceTimeoutMs: 5000, logger }),
    logger,
  });
  client = new CsiTestClient(server.socketPath);
});

after(async () => {
  client?.close();
  await server?.close();
  for (const m of mountsUnder(dir).reverse()) execFileSync('umount', ['-l', m.mountPoint]);
  for (const file of acquirer?.files.values() ?? []) for (const dev of acquirer.loopDevicesOf(file)) execFileSync('losetup', ['-d', dev]);
  rmSync(dir, { recursive: true, force: true });
});

test('the kubelet and sidecar sequence in mode all: create, stage, publish, expand both sides, unpublish, unstage, delete', async (t) => {
  if (!requireTools(t, NODE_TOOLS)) return;
  const cap = { mount: { fs_type: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
  // fsType comes from the StorageClass when the claim names none.
  const { volume } = await client.call<{ volume: { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
    name: 'pvc-flow',
    capacity_range: { required_bytes: 320 * MiB },
    volume_capabilities: [cap],
    parameters: { fsType: 'xfs', replicaCount: '3' },
  });
  const staging = join(dir, 'plugins', 'globalmount');
  const target = join(dir, 'pods', 'uid-1', 'volumes', 'mount');
  const common = { volume_id: volume.volume_id, volume_capability: cap, volume_context: volume.volume_context };
  await client.call('Node', 'NodeStageVolume', { ...common, staging_target_path: staging });
  assert.equal(mountsUnder(staging)[0]?.fsType, 'xfs');
  await client.call('Node', 'NodePublishVolume', { ...common, staging_target_path: staging, target_path: target });
  writeFileSync(join(target, 'data'), 'kept across the resize');
  const before = statfsSync(target).blocks;

  const expanded = await client.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', {
    volume_id: volume.volume_id,
    capacity_range: { required_bytes: 480 * MiB },
    volume_capability: cap,
  });
  assert.deepEqual(expanded, { capacity_bytes: 480 * MiB, node_expansion_required: true });
  const node = await client.call<{ capacity_bytes: number }>('Node', 'NodeExpandVolume', {
    volume_id: volume.volume_id,
    volume_path: target,
    staging_target_path: staging,
    capacity_range: { required_bytes: 480 * MiB },
    volume_capability: cap,
  });
  assert.equal(node.capacity_bytes, 480 * MiB);
  assert.ok(statfsSync(target).blocks > before);
  assert.equal(readFileSync(join(target, 'data'), 'utf8'), 'kept across the resize');

  await client.call('Node', 'NodeUnpublishVolume', { volume_id: volume.volume_id, target_path: target });
  await client.call('Node', 'NodeUnstageVolume', { volume_id: volume.volume_id, staging_target_path: staging });
  await client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
  assert.equal(mountsUnder(dir).length, 0);
  assert.deepEqual(acquirer.loopDevicesOf(acquirer.files.get(volume.volume_context.iqn) as string), []);
});
