import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { EngineHost } from '../../../../src/controller/management/engine-host';
import { ManagementClient } from '../../../../src/controller/management/management-client';
import type { TriremeVolume } from '../../../../src/controller/orchestrator/kubernetes';
import { InProcessLink } from '../../management/in-process-link';
import { node } from './fake-api-server';
import { eventually, harness, NS, runRealController, type Harness, type RealControllerPod } from './support';

const SIZE = 16 * 1024 * 1024;
const ID = 'pvc-99999999-aaaa-4bbb-8ccc-dddddddddddd';

/**
 * The orchestrator and reconciler driving a real volume engine through the
 * real management gRPC API. No pods run (there is no cluster), so the test
 * plays the kubelet: it opens the engine with the replica addresses of the
 * controller Deployment the orchestrator made (cluster DNS names, served by
 * in-process replicas) and points the volume's management Service name at
 * the server. Replacement, rebuild, snapshots and growth are then the
 * engine's own.
 */
describe('Kubernetes orchestrator over a real volume engine and management API', () => {
  let h: Harness;
  let host: EngineHost | undefined;
  let pod: RealControllerPod | undefined;
  let port = 0;
  const links = new Map<string, InProcessLink>();
  const cr = (): TriremeVolume => h.api.get('trireme.io', 'triremevolumes', NS, ID) as unknown as TriremeVolume;

  before(async () => {
    h = await harness(['pi-1', 'pi-2', 'pi-3'], (address) => {
      assert.equal(address, `${ID}-ctl.${NS}.svc:9500`);
      return new ManagementClient(`127.0.0.1:${port}`, 10_000);
    });
    await h.orchestrator.createVolume(ID, SIZE, { replicaCount: 3, fsType: 'ext4', chap: false });
    const connect = (address: string): InProcessLink => {
      const link = links.get(address) ?? new InProcessLink(address, SIZE);
      links.set(address, link);
      return link;
    };
    pod = await runRealController(h, ID, connect, { opTimeoutMs: 1000, probeIntervalMs: 100, openTimeoutMs: 5000 });
    ({ host, port } = pod);
  });
  after(async () => {
    await h.close();
    await pod?.close();
  });

  test('the reconciler records the engine status: every replica RW', async () => {
    await host?.write(0, Buffer.alloc(64 * 1024, 0x5a));
    await h.newReconciler().reconcileAll();
    assert.equal(cr().status?.state, 'healthy');
    assert.deepEqual(cr().status?.replicas?.map((r) => r.mode), ['RW', 'RW', 'RW']);
    assert.equal((await h.orchestrator.getVolume(ID))?.health.state, 'healthy');
  });

  test('snapshots and growth go through the management API', async () => {
    const snap = await h.orchestrator.createSnapshot('before-loss', ID);
    assert.equal(snap.name, 'before-loss');
    assert.equal(snap.sourceVolumeId, ID);
    assert.deepEqual((await h.orchestrator.listSnapshots()).map((s) => s.snapshotId), [`${ID}@before-loss`]);
    const grown = await h.orchestrator.expandVolume(ID, 2 * SIZE);
    assert.equal(grown.sizeBytes, 2 * SIZE);
    assert.equal(host?.size(), 2 * SIZE);
    await assert.rejects(h.orchestrator.deleteVolume(ID), { code: 'ERR_VOLUME_HAS_SNAPSHOTS' });
    await h.orchestrator.deleteSnapshot(snap.snapshotId);
  });

  test('a lost node: the new replica is added, rebuilt to RW, the lost one dropped, the data intact', async () => {
    const r = h.newReconciler(60_000);
    await r.start();
    h.api.put('', 'nodes', '', node('pi-4'));
    await eventually(() => h.api.watchCount === 2);
    const lostAddress = `${ID}-r1.${NS}.svc:9700`;
    links.get(lostAddress)!.down = true;
    h.api.remove('', 'nodes', '', 'pi-2');
    await eventually(() => cr().spec.replicas.some((x) => x.node === 'pi-4'), 20_000);
    await r.settled();
    const added = `${ID}-r3.${NS}.svc:9700`;
    assert.ok(links.has(added), 'the engine connected to the new replica by its Service name');
    const status = await new ManagementClient(`127.0.0.1:${port}`).status();
    assert.deepEqual(status.replicas.map((x) => x.address).sort(), [`${ID}-r0.${NS}.svc:9700`, `${ID}-r2.${NS}.svc:9700`, added].sort());
    await eventually(async () => (await new ManagementClient(`127.0.0.1:${port}`).status()).state === 'healthy', 20_000);
    assert.deepEqual(await host?.read(0, 64 * 1024), Buffer.alloc(64 * 1024, 0x5a));
    r.trigger();
    await r.settled();
    assert.equal(cr().status?.state, 'healthy');
    assert.deepEqual(cr().status?.replicas?.map((x) => `${x.index}@${x.node} ${x.mode}`), ['0@pi-1 RW', '2@pi-3 RW', '3@pi-4 RW']);
    await r.stop();
  });

  test('a node NotReady past the grace: its replica, out of the write set, is replaced and rebuilt by the engine', async () => {
    const client = new ManagementClient(`127.0.0.1:${port}`);
    h.api.put('', 'nodes', '', node('pi-5'));
    const lost = `${ID}-r2.${NS}.svc:9700`;
    links.get(lost)!.down = true;
    // The kubelet on pi-3 stopped reporting ten minutes ago; the grace is five.
    const since = new Date(Date.now() - 10 * 60_000).toISOString();
    h.api.put('', 'nodes', '', { ...node('pi-3', false), status: { conditions: [{ type: 'Ready', status: 'Unknown', lastTransitionTime: since }] } });
    await host?.write(128 * 1024, Buffer.alloc(64 * 1024, 0x6b));
    await eventually(async () => (await client.status()).replicas.find((x) => x.address === lost)?.mode !== 'RW', 20_000);
    await h.newReconciler(60_000, { replicaNodeGraceMs: 5 * 60_000 }).reconcileAll();
    assert.deepEqual(cr().spec.replicas.map((x) => `${x.index}@${x.node}`), ['0@pi-1', '3@pi-4', '4@pi-5']);
    const added = `${ID}-r4.${NS}.svc:9700`;
    await eventually(async () => {
      const s = await client.status();
      return s.state === 'healthy' && s.replicas.some((x) => x.address === added && x.mode === 'RW');
    }, 20_000);
    assert.ok(!(await client.status()).replicas.some((x) => x.address === lost), 'the replica on the NotReady node left the volume');
    assert.deepEqual(await host?.read(0, 64 * 1024), Buffer.alloc(64 * 1024, 0x5a));
    assert.deepEqual(await host?.read(128 * 1024, 64 * 1024), Buffer.alloc(64 * 1024, 0x6b));
    client.close();
  });
});
