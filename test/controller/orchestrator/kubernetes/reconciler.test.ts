import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { TriremeVolume } from '../../../../src/controller/orchestrator/kubernetes';
import { node } from './fake-api-server';
import { eventually, harness, NS, type Harness } from './support';

const GiB = 1024 ** 3;
const ID = 'pvc-11111111-2222-4333-8444-555555555555';

describe('Reconciler against the fake API server', () => {
  let h: Harness;
  const cr = (): TriremeVolume => h.api.get('trireme.io', 'triremevolumes', NS, ID) as unknown as TriremeVolume;

  before(async () => {
    h = await harness(['pi-1', 'pi-2', 'pi-3']);
    await h.orchestrator.createVolume(ID, GiB, { replicaCount: 3, fsType: 'ext4', chap: false });
    h.bootController(ID);
  });
  after(async () => {
    await h.close();
  });

  test('a pass records replica modes and snapshots in status', async () => {
    const r = h.newReconciler();
    await h.controls.get(`${ID}-ctl.${NS}.svc:9500`)?.createSnapshot('before-drain');
    await r.reconcileAll();
    const status = cr().status;
    assert.equal(status?.state, 'healthy');
    assert.deepEqual(status?.replicas?.map((x) => [x.node, x.mode]), [['pi-1', 'RW'], ['pi-2', 'RW'], ['pi-3', 'RW']]);
    assert.deepEqual(status?.snapshots?.map((s) => s.name), ['before-drain']);
    assert.equal(status?.rebuildPercent, 100);
    assert.equal(status?.observedGeneration, cr().metadata.generation);
  });

  test('a controller that does not answer leaves the volume pending with the reason', async () => {
    const control = h.controls.get(`${ID}-ctl.${NS}.svc:9500`);
    assert.ok(control);
    control.reachable = false;
    await h.newReconciler().reconcileAll();
    assert.equal(cr().status?.state, 'pending');
    assert.match(cr().status?.message ?? '', /not answering/);
    assert.equal((await h.orchestrator.getVolume(ID))?.health.state, 'degraded');
    control.reachable = true;
  });

  test('watch-driven: a replica whose node is removed is replaced on another node and rebuilt', async () => {
    const r = h.newReconciler(60_000);
    await r.start();
    h.api.put('', 'nodes', '', node('pi-4'));
    await eventually(() => h.api.watchCount === 2);
    // The node object goes away (kubectl delete node after the Pi died): only the watch can tell in time, the resync is a minute off.
    h.api.remove('', 'nodes', '', 'pi-2');
    await eventually(() => cr().spec.replicas.some((x) => x.node === 'pi-4'));
    await r.settled();
    await eventually(() => h.api.get('apps', 'deployments', NS, `${ID}-r1`) === undefined);
    const spec = cr().spec;
    assert.deepEqual(spec.replicas.map((x) => `${x.index}@${x.node}`), ['0@pi-1', '2@pi-3', '3@pi-4']);
    assert.equal(spec.nextReplicaIndex, 4);
    const control = h.controls.get(`${ID}-ctl.${NS}.svc:9500`);
    assert.deepEqual(control?.log.slice(-2), [`remove ${ID}-r1.${NS}.svc:9700`, `add ${ID}-r3.${NS}.svc:9700`]);
    assert.ok(h.api.get('apps', 'deployments', NS, `${ID}-r3`));
    assert.ok(h.api.get('', 'services', NS, `${ID}-r3`));
    assert.equal(h.api.get('', 'services', NS, `${ID}-r1`), undefined);
    const args = (h.api.get('apps', 'deployments', NS, `${ID}-ctl`)?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0].args;
    assert.deepEqual(args.filter((_, i) => args[i - 1] === '--replica'), [0, 2, 3].map((i) => `${ID}-r${i}.${NS}.svc:9700`));
    await eventually(() => cr().status?.state === 'rebuilding');
    assert.equal(cr().status?.replacements, 1);
    assert.equal(cr().status?.rebuildPercent, 25);
    await r.stop();
    // The rebuild completes: the newcomer is RW and no rebuild record lingers in status.
    control?.log.splice(0);
    await h.newReconciler().reconcileAll();
    assert.equal(cr().status?.state, 'healthy');
    assert.equal(cr().status?.rebuild, undefined);
    assert.equal(cr().status?.replacements, 1);
  });

  test('watches that the server ends are restarted, and a deleted controller Deployment comes back', async () => {
    const r = h.newReconciler(60_000);
    await r.start();
    await eventually(() => h.api.watchCount === 2);
    const watchesBefore = h.api.calls.filter((c) => c.verb === 'watch').length;
    h.api.endWatches();
    await eventually(() => h.api.watchCount === 2 && h.api.calls.filter((c) => c.verb === 'watch').length >= watchesBefore + 2);
    // 410 Gone as an ERROR event, then the end: the watches come back again.
    h.api.expireWatches();
    await eventually(() => h.api.watchCount === 2 && h.api.calls.filter((c) => c.verb === 'watch').length >= watchesBefore + 4);
    await r.settled();
    // Someone deletes the controller Deployment; the next event (any change to the volume) brings it back.
    h.api.remove('apps', 'deployments', NS, `${ID}-ctl`);
    h.api.put('', 'nodes', '', node('pi-5'));
    await eventually(() => h.api.get('apps', 'deployments', NS, `${ID}-ctl`) !== undefined);
    // Scaled to zero by hand: the next pass scales it back, a guarded update on the current resourceVersion.
    await r.settled();
    const ctl = h.api.get('apps', 'deployments', NS, `${ID}-ctl`);
    assert.ok(ctl?.spec);
    h.api.put('apps', 'deployments', NS, { ...ctl, spec: { ...ctl.spec, replicas: 0 } });
    h.api.failNext('PUT', new RegExp(`/deployments/${ID}-ctl$`), 409);
    r.trigger();
    await eventually(() => (h.api.get('apps', 'deployments', NS, `${ID}-ctl`)?.spec as { replicas: number }).replicas === 1);
    await r.stop();
  });

  test('status writes that conflict are re-read and retried', async () => {
    h.api.failNext('PUT', new RegExp(`/triremevolumes/${ID}/status$`), 409, 3);
    const before = cr().status?.lastReconciled;
    await new Promise((res) => setTimeout(res, 5));
    await h.newReconciler().reconcileAll();
    assert.notEqual(cr().status?.lastReconciled, before);
  });

  test('a TriremeVolume deleted with kubectl is finalized: workloads gone, then the resource', async () => {
    const r = h.newReconciler(60_000);
    await r.start();
    await eventually(() => h.api.watchCount === 2);
    await h.kube.deleteVolume(ID);
    await eventually(() => h.api.get('trireme.io', 'triremevolumes', NS, ID) === undefined);
    assert.equal(h.api.list('apps', 'deployments', NS).length, 0);
    assert.equal(h.api.list('', 'services', NS).length, 0);
    await r.stop();
  });
});

describe('Reconciler and a clone still being copied', () => {
  const SRC = 'pvc-5005cafe-0000-4000-8000-000000000001';
  const CLONE = 'pvc-5005cafe-0000-4000-8000-000000000002';
  let h: Harness;
  const clone = (): TriremeVolume | undefined => h.api.get('trireme.io', 'triremevolumes', NS, CLONE) as unknown as TriremeVolume | undefined;

  before(async () => {
    h = await harness(['pi-1', 'pi-2', 'pi-3', 'pi-4']);
    await h.orchestrator.createVolume(SRC, GiB, { replicaCount: 3, fsType: 'ext4', chap: false });
    const source = h.bootController(SRC);
    // What a CreateVolume that died mid-copy leaves: the resource with its clone record, the snapshot cut for it.
    await source.createSnapshot(`clone-for-${CLONE}`);
    h.api.put('trireme.io', 'triremevolumes', NS, {
      apiVersion: 'trireme.io/v1alpha1',
      kind: 'TriremeVolume',
      metadata: { name: CLONE, finalizers: ['trireme.io/cleanup'] },
      spec: {
        csiName: CLONE, sizeBytes: GiB, replicaCount: 2, fsType: 'ext4', chap: false, iqn: `iqn.2026-11.io.trireme:${CLONE}`,
        replicas: [{ index: 0, node: 'pi-1' }, { index: 1, node: 'pi-2' }], nextReplicaIndex: 2,
        clone: { kind: 'volume', sourceId: SRC, volume: SRC, snapshot: `clone-for-${CLONE}` },
      },
    });
  });
  after(async () => {
    await h.close();
  });

  test('gets its replica workloads but no controller, is never given replacements, and shows Populating', async () => {
    h.api.remove('', 'nodes', '', 'pi-2');
    await h.newReconciler().reconcileAll();
    assert.ok(h.api.get('apps', 'deployments', NS, `${CLONE}-r0`));
    assert.equal(h.api.get('apps', 'deployments', NS, `${CLONE}-ctl`), undefined, 'a controller would serve a half copy');
    assert.deepEqual(clone()?.spec.replicas.map((r) => r.node), ['pi-1', 'pi-2'], 'no controller to hand a new replica to: the retry redoes the copy');
    assert.equal(clone()?.status?.phase, 'Populating');
    assert.equal(clone()?.status?.state, 'pending');
    assert.match(clone()?.status?.message ?? '', /^populating: copying/);
    assert.equal(await h.orchestrator.findVolumeByName(CLONE), undefined);
    h.api.put('', 'nodes', '', node('pi-2'));
  });

  test('deleted before its copy finished: the snapshot cut on the source goes too', async () => {
    const source = h.controls.get(`${SRC}-ctl.${NS}.svc:9500`);
    assert.deepEqual(source?.snapshots.map((s) => s.name), [`clone-for-${CLONE}`]);
    await h.kube.deleteVolume(CLONE);
    await h.newReconciler().reconcileAll();
    assert.equal(clone(), undefined);
    assert.deepEqual(source?.snapshots, []);
    assert.equal(h.api.list('apps', 'deployments', NS).filter((d) => d.metadata.name.startsWith(CLONE)).length, 0);
  });

  test('a retried clone whose source snapshot was deleted meanwhile is NOT_FOUND and removed, pods and all', async () => {
    const id = 'pvc-5005cafe-0000-4000-8000-000000000004';
    h.api.put('trireme.io', 'triremevolumes', NS, {
      apiVersion: 'trireme.io/v1alpha1',
      kind: 'TriremeVolume',
      metadata: { name: id, finalizers: ['trireme.io/cleanup'] },
      spec: {
        csiName: id, sizeBytes: GiB, replicaCount: 1, fsType: 'ext4', chap: false, iqn: `iqn.2026-11.io.trireme:${id}`,
        replicas: [{ index: 0, node: 'pi-3' }], nextReplicaIndex: 1,
        clone: { kind: 'snapshot', sourceId: `${SRC}@gone`, volume: SRC, snapshot: 'gone' },
      },
    });
    const params = { replicaCount: 1, fsType: 'ext4' as const, chap: false };
    await assert.rejects(h.orchestrator.createVolume(id, GiB, params, { kind: 'snapshot', snapshotId: `${SRC}@gone` }), { code: 'ERR_SNAPSHOT_NOT_FOUND' });
    assert.equal(h.api.get('trireme.io', 'triremevolumes', NS, id), undefined);
    assert.equal(h.api.list('apps', 'deployments', NS).filter((d) => d.metadata.name.startsWith(id)).length, 0);
    assert.equal(h.api.list('', 'services', NS).filter((d) => d.metadata.name.startsWith(id)).length, 0);
  });

  test('DeleteVolume of a clone still being copied deletes its snapshot on the source as well', async () => {
    const source = h.controls.get(`${SRC}-ctl.${NS}.svc:9500`);
    const id = 'pvc-5005cafe-0000-4000-8000-000000000003';
    await source?.createSnapshot(`clone-for-${id}`);
    h.api.put('trireme.io', 'triremevolumes', NS, {
      apiVersion: 'trireme.io/v1alpha1',
      kind: 'TriremeVolume',
      metadata: { name: id, finalizers: ['trireme.io/cleanup'] },
      spec: {
        csiName: id, sizeBytes: GiB, replicaCount: 1, fsType: 'ext4', chap: false, iqn: `iqn.2026-11.io.trireme:${id}`,
        replicas: [{ index: 0, node: 'pi-3' }], nextReplicaIndex: 1,
        clone: { kind: 'volume', sourceId: SRC, volume: SRC, snapshot: `clone-for-${id}` },
      },
    });
    await h.orchestrator.deleteVolume(id);
    assert.equal(h.api.get('trireme.io', 'triremevolumes', NS, id), undefined);
    assert.deepEqual(source?.snapshots, []);
  });
});
