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
