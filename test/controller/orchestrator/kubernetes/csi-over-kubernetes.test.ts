import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { identityService, startCsiServer, type RunningCsiServer } from '../../../../src/common/csi';
import { silentLogger } from '../../../../src/common/logger';
import { controllerService } from '../../../../src/controller/csi';
import { status } from '@grpc/grpc-js';
import { CsiTestClient, grpcStatus } from '../../../node/support/csi-client';
import { render, REPO } from '../../../deploy/kustomize';
import { harness, NS, type Harness } from './support';

const MiB = 1024 * 1024;
const mountCap = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

/**
 * The CSI controller service (gRPC on a unix socket, as the sidecars call it)
 * over the Kubernetes orchestrator, with the parameters of the StorageClasses
 * in deploy/ plus what csi-provisioner --extra-create-metadata adds.
 */
describe('CSI controller service over the Kubernetes orchestrator', () => {
  let h: Harness;
  let server: RunningCsiServer;
  let client: CsiTestClient;
  let dir: string;
  const classes = render(join(REPO, 'deploy/kustomize/base')).filter((m) => m.kind === 'StorageClass') as unknown as Array<{ metadata: { name: string }; parameters: Record<string, string> }>;

  before(async () => {
    h = await harness(['pi-1', 'pi-2', 'pi-3']);
    dir = mkdtempSync(join(tmpdir(), 'trireme-csi-k8s-'));
    const logger = silentLogger();
    server = await startCsiServer({
      endpoint: `unix://${join(dir, 'csi.sock')}`,
      identity: identityService({ version: '0.0.0-test', controllerService: true, readinessChecks: [{ name: 'orchestrator', check: () => h.orchestrator.ready() }], logger }),
      controller: controllerService(h.orchestrator),
      logger,
    });
    client = new CsiTestClient(server.socketPath);
  });
  after(async () => {
    client?.close();
    await server?.close();
    await h?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('every StorageClass in deploy/ provisions through CreateVolume', async () => {
    assert.ok(classes.length >= 3);
    for (const [i, sc] of classes.entries()) {
      const name = `pvc-00000000-0000-4000-8000-00000000000${i}`;
      const parameters = { ...sc.parameters, 'csi.storage.k8s.io/pvc/name': `data-${i}`, 'csi.storage.k8s.io/pvc/namespace': 'default', 'csi.storage.k8s.io/pv/name': name };
      const { volume } = await client.call<{ volume: { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
        name,
        capacity_range: { required_bytes: 64 * MiB },
        volume_capabilities: [mountCap],
        parameters,
      });
      assert.equal(volume.volume_id, name);
      assert.equal(Number(volume.capacity_bytes), 64 * MiB);
      assert.match(volume.volume_context.portal, /^10\.152\.183\.\d+:3260$/);
      assert.equal(volume.volume_context.iqn, `iqn.2026-11.io.trireme:${name}`);
      const cr = h.api.get('trireme.io', 'triremevolumes', NS, name)?.spec as { replicaCount: number; replicas: unknown[] };
      assert.equal(cr.replicaCount, Number(sc.parameters.replicaCount), sc.metadata.name);
      assert.equal(cr.replicas.length, Number(sc.parameters.replicaCount));
    }
    const listed = await client.call<{ entries: Array<{ volume: { volume_id: string } }> }>('Controller', 'ListVolumes', {});
    assert.equal(listed.entries.length, classes.length);
  });

  test('clones: CLONE_VOLUME is advertised; a missing source is NOT_FOUND, a clone smaller than its source OUT_OF_RANGE', async () => {
    const caps = await client.call<{ capabilities: Array<{ rpc: { type: string } }> }>('Controller', 'ControllerGetCapabilities', {});
    assert.ok(caps.capabilities.some((c) => c.rpc.type === 'CLONE_VOLUME'));
    const source = 'pvc-00000000-0000-4000-8000-000000000001';
    h.bootController(source);
    const { snapshot } = await client.call<{ snapshot: { snapshot_id: string; size_bytes: number } }>('Controller', 'CreateSnapshot', { name: 'snap-for-clone', source_volume_id: source });
    assert.equal(Number(snapshot.size_bytes), 64 * MiB, 'the restore size is the source volume size');
    const before = h.api.list('trireme.io', 'triremevolumes', NS).length;
    const clone = (name: string, extra: object) => client.call('Controller', 'CreateVolume', { name, volume_capabilities: [mountCap], parameters: { replicaCount: '1' }, ...extra });
    await assert.rejects(clone('pvc-clone-1', { volume_content_source: { snapshot: { snapshot_id: `${source}@no-such` } } }), grpcStatus(status.NOT_FOUND));
    await assert.rejects(clone('pvc-clone-2', { volume_content_source: { snapshot: { snapshot_id: 'pvc-gone@snap' } } }), grpcStatus(status.NOT_FOUND));
    await assert.rejects(clone('pvc-clone-3', { volume_content_source: { volume: { volume_id: 'pvc-gone' } } }), grpcStatus(status.NOT_FOUND));
    await assert.rejects(
      clone('pvc-clone-4', { capacity_range: { required_bytes: 16 * MiB, limit_bytes: 32 * MiB }, volume_content_source: { snapshot: { snapshot_id: snapshot.snapshot_id } } }),
      grpcStatus(status.OUT_OF_RANGE),
    );
    await assert.rejects(clone('pvc-clone-5', { capacity_range: { required_bytes: 16 * MiB, limit_bytes: 32 * MiB }, volume_content_source: { volume: { volume_id: source } } }), grpcStatus(status.OUT_OF_RANGE));
    assert.equal(h.api.list('trireme.io', 'triremevolumes', NS).length, before, 'nothing is made for a refused clone');
    await client.call('Controller', 'DeleteSnapshot', { snapshot_id: snapshot.snapshot_id });
  });

  test('expand, capacity and delete answer through gRPC; a repeated delete is fine', async () => {
    const id = 'pvc-00000000-0000-4000-8000-000000000000';
    h.bootController(id);
    const grown = await client.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', { volume_id: id, capacity_range: { required_bytes: 128 * MiB } });
    assert.equal(Number(grown.capacity_bytes), 128 * MiB);
    const cap = await client.call<{ available_capacity: number }>('Controller', 'GetCapacity', { parameters: { replicaCount: '3' } });
    assert.ok(Number(cap.available_capacity) > 0);
    await client.call('Controller', 'DeleteVolume', { volume_id: id });
    assert.equal(h.api.get('trireme.io', 'triremevolumes', NS, id), undefined);
    // CSI: deleting a volume that is already gone succeeds.
    await client.call('Controller', 'DeleteVolume', { volume_id: id });
  });
});
