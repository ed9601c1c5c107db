import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { errorCode } from '../../../../src/common/errors';
import { node } from './fake-api-server';
import { harness, NS, type Harness } from './support';

const PARAMS = { replicaCount: 3, fsType: 'ext4' as const, chap: false };
const GiB = 1024 ** 3;

type Dep = { metadata: { name: string }; spec: { template: { spec: { affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: Array<{ matchExpressions: Array<{ values: string[] }> }> } } }; containers: Array<{ args: string[] }>; volumes?: Array<{ hostPath?: { path: string } }> } } } };

function pinnedNode(d: Dep): string {
  return d.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values[0];
}

describe('KubernetesOrchestrator against the fake API server', () => {
  let h: Harness;
  before(async () => {
    h = await harness(['pi-1', 'pi-2', 'pi-3']);
  });
  after(async () => {
    await h.close();
  });

  test('createVolume makes the resource, a controller and three replicas on distinct nodes', async () => {
    const v = await h.orchestrator.createVolume('pvc-0a1b2c3d-0000-4000-8000-000000000001', 1 * GiB, PARAMS);
    assert.equal(v.volumeId, 'pvc-0a1b2c3d-0000-4000-8000-000000000001');
    assert.equal(v.sizeBytes, GiB);
    assert.match(v.portal, /^10\.152\.183\.\d+:3260$/, 'the portal is the Service ClusterIP, reachable from the host network');
    assert.equal(v.iqn, 'iqn.2026-11.io.trireme:pvc-0a1b2c3d-0000-4000-8000-000000000001');
    const cr = h.api.get('trireme.io', 'triremevolumes', NS, v.volumeId);
    assert.ok(cr);
    assert.deepEqual(cr.metadata.finalizers, ['trireme.io/cleanup']);
    const replicas = h.api.list('apps', 'deployments', NS).filter((d) => /-r\d+$/.test(d.metadata.name)) as unknown as Dep[];
    assert.equal(replicas.length, 3);
    assert.deepEqual(replicas.map(pinnedNode).sort(), ['pi-1', 'pi-2', 'pi-3']);
    for (const d of replicas) assert.match(d.spec.template.spec.volumes?.[0].hostPath?.path ?? '', /^\/var\/lib\/trireme\/volumes\/pvc-[^/]+\/r\d$/);
    const ctl = h.api.get('apps', 'deployments', NS, `${v.volumeId}-ctl`) as unknown as Dep;
    const args = ctl.spec.template.spec.containers[0].args;
    assert.deepEqual(
      args.filter((_, i) => args[i - 1] === '--replica'),
      [0, 1, 2].map((i) => `${v.volumeId}-r${i}.${NS}.svc:9700`),
    );
    assert.equal(h.api.list('', 'services', NS).length, 4);
  });

  test('createVolume is idempotent by name and survives a retried create (409 AlreadyExists)', async () => {
    const before = h.api.list('apps', 'deployments', NS).length;
    const again = await h.orchestrator.createVolume('pvc-0a1b2c3d-0000-4000-8000-000000000001', GiB, PARAMS);
    assert.equal(again.volumeId, 'pvc-0a1b2c3d-0000-4000-8000-000000000001');
    assert.equal(h.api.list('apps', 'deployments', NS).length, before);
    // The resource create answers 409 as if an earlier attempt had won the race: the workloads still get made.
    h.api.put('trireme.io', 'triremevolumes', NS, {
      apiVersion: 'trireme.io/v1alpha1',
      kind: 'TriremeVolume',
      metadata: { name: 'half-made', finalizers: ['trireme.io/cleanup'] },
      spec: { csiName: 'half-made', sizeBytes: GiB, replicaCount: 1, fsType: 'xfs', chap: false, iqn: 'iqn.2026-11.io.trireme:half-made', replicas: [{ index: 0, node: 'pi-2' }], nextReplicaIndex: 1 },
    });
    const half = await h.orchestrator.createVolume('half-made', GiB, { ...PARAMS, replicaCount: 1 });
    assert.equal(half.params.fsType, 'xfs');
    assert.ok(h.api.get('apps', 'deployments', NS, 'half-made-r0'));
    assert.ok(h.api.get('apps', 'deployments', NS, 'half-made-ctl'));
  });

  test('names that are not DNS labels are hashed into volume ids', async () => {
    const v = await h.orchestrator.createVolume('My_Volume/with odd chars', 2 * 1024 * 1024, { ...PARAMS, replicaCount: 1 });
    assert.match(v.volumeId, /^tv-[0-9a-f]{32}$/);
    assert.equal(v.name, 'My_Volume/with odd chars');
    assert.equal((await h.orchestrator.findVolumeByName('My_Volume/with odd chars'))?.volumeId, v.volumeId);
  });

  test('too few ready, schedulable nodes is ERR_INSUFFICIENT_CAPACITY and creates nothing', async () => {
    const before = h.api.list('trireme.io', 'triremevolumes', NS).length;
    await assert.rejects(h.orchestrator.createVolume('pvc-too-many', GiB, { ...PARAMS, replicaCount: 4 }), (err) => errorCode(err) === 'ERR_INSUFFICIENT_CAPACITY');
    h.api.put('', 'nodes', '', node('pi-4', false));
    h.api.put('', 'nodes', '', node('pi-5', true, true));
    await assert.rejects(h.orchestrator.createVolume('pvc-too-many', GiB, { ...PARAMS, replicaCount: 4 }), (err) => errorCode(err) === 'ERR_INSUFFICIENT_CAPACITY');
    assert.equal(h.api.list('trireme.io', 'triremevolumes', NS).length, before);
    h.api.remove('', 'nodes', '', 'pi-4');
    h.api.remove('', 'nodes', '', 'pi-5');
  });

  test('a CHAP volume gets a Secret the controller reads and the node receives', async () => {
    const v = await h.orchestrator.createVolume('pvc-chap', GiB, { ...PARAMS, chap: true });
    assert.ok(v.chap && v.chap.secret.length >= 16);
    const secret = h.api.get('', 'secrets', NS, 'pvc-chap-chap');
    assert.equal(Buffer.from(secret?.data?.secret ?? '', 'base64').toString(), v.chap.secret);
    const ctl = h.api.get('apps', 'deployments', NS, 'pvc-chap-ctl') as unknown as { spec: { template: { spec: { containers: Array<{ args: string[]; env: Array<{ name: string }> }> } } } };
    assert.ok(ctl.spec.template.spec.containers[0].args.includes('--chap-user'));
    const env = ctl.spec.template.spec.containers[0].env as Array<{ name: string; valueFrom?: { secretKeyRef?: { name: string } } }>;
    assert.deepEqual(env.find((e) => e.name === 'TRIREME_CHAP_SECRET')?.valueFrom?.secretKeyRef?.name, 'pvc-chap-chap', 'the controller reads the secret from the Secret');
    assert.ok(!JSON.stringify(ctl).includes(v.chap.secret), 'the secret is never written into the Deployment');
  });

  test('expandVolume grows through the controller, records the size and rolls the controller args, across 409s', async () => {
    const id = 'pvc-0a1b2c3d-0000-4000-8000-000000000001';
    const control = h.bootController(id);
    h.api.failNext('PUT', new RegExp(`/triremevolumes/${id}$`), 409, 2);
    const grown = await h.orchestrator.expandVolume(id, 2 * GiB);
    assert.equal(grown.sizeBytes, 2 * GiB);
    assert.deepEqual(control.log, [`expand ${2 * GiB}`]);
    assert.equal((h.api.get('trireme.io', 'triremevolumes', NS, id)?.spec as { sizeBytes: number }).sizeBytes, 2 * GiB);
    const args = (h.api.get('apps', 'deployments', NS, `${id}-ctl`) as unknown as Dep).spec.template.spec.containers[0].args;
    assert.equal(args[args.indexOf('--size') + 1], String(2 * GiB));
    // Smaller or equal: nothing happens (CSI: expansion never shrinks).
    assert.equal((await h.orchestrator.expandVolume(id, GiB)).sizeBytes, 2 * GiB);
    assert.equal(control.log.length, 1);
    await assert.rejects(h.orchestrator.expandVolume('pvc-nope', GiB), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
  });

  test('snapshots: create, find, list, refuse deleting their volume, delete', async () => {
    const id = 'pvc-0a1b2c3d-0000-4000-8000-000000000001';
    const snap = await h.orchestrator.createSnapshot('snapshot-1', id);
    assert.equal(snap.snapshotId, `${id}@snapshot-1`);
    assert.equal(snap.sizeBytes, 2 * GiB);
    assert.equal((await h.orchestrator.createSnapshot('snapshot-1', id)).snapshotId, snap.snapshotId, 'idempotent by name');
    assert.equal((await h.orchestrator.getSnapshot(snap.snapshotId))?.name, 'snapshot-1');
    assert.equal(await h.orchestrator.getSnapshot('pvc-nope@x'), undefined);
    await assert.rejects(h.orchestrator.deleteVolume(id), (err) => errorCode(err) === 'ERR_VOLUME_HAS_SNAPSHOTS');
    await h.orchestrator.deleteSnapshot(snap.snapshotId);
    await assert.rejects(h.orchestrator.deleteSnapshot(snap.snapshotId), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
    await assert.rejects(h.orchestrator.createSnapshot('s2', 'pvc-nope'), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
  });

  test('listVolumes is ordered by id; capacity divides the node budget among replicas', async () => {
    const ids = (await h.orchestrator.listVolumes()).map((v) => v.volumeId);
    assert.deepEqual(ids, [...ids].sort());
    assert.ok(ids.length >= 4);
    const cap = await h.orchestrator.capacity(PARAMS);
    assert.ok(cap.availableBytes > 0 && cap.availableBytes < 64 * GiB);
    assert.equal(await h.orchestrator.ready(), true);
  });

  test('deleteVolume removes workloads, Secret, finalizer and resource; twice is NOT_FOUND', async () => {
    await h.orchestrator.deleteVolume('pvc-chap');
    assert.equal(h.api.get('trireme.io', 'triremevolumes', NS, 'pvc-chap'), undefined);
    assert.equal(h.api.list('apps', 'deployments', NS).filter((d) => d.metadata.name.startsWith('pvc-chap')).length, 0);
    assert.equal(h.api.list('', 'services', NS).filter((d) => d.metadata.name.startsWith('pvc-chap')).length, 0);
    assert.equal(h.api.get('', 'secrets', NS, 'pvc-chap-chap'), undefined);
    await assert.rejects(h.orchestrator.deleteVolume('pvc-chap'), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
    assert.equal(await h.orchestrator.getVolume('pvc-chap'), undefined);
  });

  test('an API server that fails is ERR_ORCHESTRATOR_UNAVAILABLE, and the next call works', async () => {
    h.api.failNext('GET', /\/triremevolumes$/, 500);
    await assert.rejects(h.orchestrator.listVolumes(), (err) => errorCode(err) === 'ERR_ORCHESTRATOR_UNAVAILABLE');
    assert.ok((await h.orchestrator.listVolumes()).length > 0);
  });
});
