import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { controllerDeployment, controllerService, replicaCommand, replicaDeployment, replicaService, chapSecret } from '../../src/controller/orchestrator/kubernetes/manifests';
import { CONTROLLER_GLIBC_TUNABLES, CONTROLLER_NODE_FLAGS, REPLICA_NODE_FLAGS } from '../../src/controller/orchestrator/volume-processes';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { promisify } from 'node:util';
import type { TriremeVolume } from '../../src/controller/orchestrator/kubernetes';
import { loadYamlFile, render, REPO, type Manifest } from './kustomize';
import { validateAgainstCrd, validateBuiltin, validateSnapshot, validateSnapshotClass } from './schemas';

const base = render(join(REPO, 'deploy/kustomize/base'));
const microk8s = render(join(REPO, 'deploy/kustomize/overlays/microk8s'));
const crd = base.find((m) => m.kind === 'CustomResourceDefinition' && m.metadata.name === 'triremevolumes.trireme.io') as Manifest;

function yamlFiles(dir: string): string[] {
  return readdirSync(join(REPO, dir), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.yaml') && !f.endsWith('kustomization.yaml'))
    .map((f) => join(REPO, dir, f));
}

async function validate(m: Manifest, where: string): Promise<void> {
  if (m.kind === 'TriremeVolume') {
    assert.deepEqual(validateAgainstCrd(crd, m), [], `${where}: TriremeVolume ${m.metadata.name}`);
  } else if (m.kind === 'VolumeSnapshotClass') {
    assert.deepEqual(validateSnapshotClass(m), [], `${where}: ${m.metadata.name}`);
  } else if (m.kind === 'VolumeSnapshot') {
    assert.deepEqual(validateSnapshot(m), [], `${where}: ${m.metadata.name}`);
  } else {
    assert.equal(await validateBuiltin(m), true, `${where}: ${m.apiVersion} ${m.kind} is not a Kubernetes built-in kind`);
  }
}

const sample: TriremeVolume = {
  apiVersion: 'trireme.io/v1alpha1',
  kind: 'TriremeVolume',
  metadata: { name: 'pvc-0a1b2c3d-0000-4000-8000-000000000001', namespace: 'trireme-system', uid: 'u-1', finalizers: ['trireme.io/cleanup'] },
  spec: {
    csiName: 'pvc-0a1b2c3d-0000-4000-8000-000000000001',
    sizeBytes: 1 << 30,
    replicaCount: 3,
    fsType: 'ext4',
    chap: true,
    iqn: 'iqn.2026-11.io.trireme:pvc-0a1b2c3d-0000-4000-8000-000000000001',
    replicas: [0, 1, 2].map((index) => ({ index, node: `pi-${index + 1}` })),
    nextReplicaIndex: 3,
  },
  status: { state: 'rebuilding', message: 'rebuilding', replicas: [{ index: 0, node: 'pi-1', address: 'a:9700', mode: 'WO' }], rebuild: { address: 'a:9700', kind: 'full', bytesDone: 1, bytesTotal: 4, percent: 25 }, rebuildPercent: 25, snapshots: [] },
};

describe('deploy/ manifests against the Kubernetes 1.34 OpenAPI schemas (offline)', () => {
  test('every object of kustomize/base validates', async () => {
    assert.ok(base.length >= 15);
    for (const m of base) await validate(m, 'base');
  });

  test('the microk8s overlay validates and moves every kubelet path under the snap', async () => {
    for (const m of microk8s) await validate(m, 'overlays/microk8s');
    const ds = JSON.stringify(microk8s.find((m) => m.kind === 'DaemonSet'));
    assert.ok(!/"\/var\/lib\/kubelet/.test(ds) && !/=\/var\/lib\/kubelet/.test(ds), 'no /var/lib/kubelet path is left in the node DaemonSet');
    assert.equal((ds.match(/\/var\/snap\/microk8s\/common\/var\/lib\/kubelet/g) ?? []).length, 5);
    assert.equal(microk8s.length, base.length);
  });

  test('examples and bench jobs validate', async () => {
    const files = [...yamlFiles('deploy/examples'), ...yamlFiles('bench/k8s')];
    assert.ok(files.length >= 2, files.join(', '));
    for (const f of files) for (const m of loadYamlFile(f)) await validate(m, f);
  });

  test('the workloads the orchestrator makes validate, and its TriremeVolume fits the CRD', async () => {
    const settings = { namespace: 'trireme-system', image: 'ghcr.io/trireme/trireme:0.1.0', dataRoot: '/var/lib/trireme/volumes', serviceAccount: 'trireme-volume' };
    const objects = [controllerDeployment(sample, settings), controllerService(sample, settings), replicaDeployment(sample, 0, 'pi-1', settings), replicaService(sample, 0, settings), chapSecret(sample, 's3cret', settings)];
    for (const o of objects) await validate(o as unknown as Manifest, 'orchestrator');
    await validate(sample as unknown as Manifest, 'orchestrator');
    assert.notDeepEqual(validateAgainstCrd(crd, { ...sample, spec: { ...sample.spec, fsType: 'btrfs' } }), [], 'the CRD schema rejects a bad fsType');
    assert.notDeepEqual(validateAgainstCrd(crd, { ...sample, spec: { ...sample.spec, replicaCount: 6 } }), []);
    // A clone: its source record in the spec, its phase in status.
    const clone = { kind: 'volume' as const, sourceId: 'pvc-src', volume: 'pvc-src', snapshot: 'clone-for-pvc-0a1b2c3d-0000-4000-8000-000000000001' };
    assert.deepEqual(validateAgainstCrd(crd, { ...sample, spec: { ...sample.spec, clone }, status: { ...sample.status, phase: 'Populating' } }), []);
    assert.notDeepEqual(validateAgainstCrd(crd, { ...sample, spec: { ...sample.spec, clone: { ...clone, kind: 'pvc' } } }), [], 'the CRD schema rejects an unknown clone kind');
    assert.notDeepEqual(validateAgainstCrd(crd, { ...sample, status: { ...sample.status, phase: 'Copying' } }), []);
  });

  test('a broken manifest is caught (the validators are not vacuous)', async () => {
    const ds = structuredClone(base.find((m) => m.kind === 'DaemonSet')) as Manifest & { spec: { template: { spec: { hostPID: unknown } } } };
    ds.spec.template.spec.hostPID = 'yes';
    await assert.rejects(validate(ds, 'mutated'), /hostPID must be boolean/);
    assert.notDeepEqual(validateSnapshotClass({ apiVersion: 'snapshot.storage.k8s.io/v1', kind: 'VolumeSnapshotClass', metadata: { name: 'x' }, driver: 'csi.trireme.io', deletionPolicy: 'Keep' }), []);
  });

  test('CSIDriver: no attach step, fsGroupPolicy File', () => {
    const driver = base.find((m) => m.kind === 'CSIDriver') as Manifest & { spec: Record<string, unknown> };
    assert.equal(driver.metadata.name, 'csi.trireme.io');
    assert.equal(driver.spec.attachRequired, false);
    assert.equal(driver.spec.fsGroupPolicy, 'File');
  });

  test('StorageClasses: 3 and 1 replicas, Retain and Delete, all expandable', () => {
    const classes = base.filter((m) => m.kind === 'StorageClass') as Array<Manifest & { parameters: Record<string, string>; reclaimPolicy: string; allowVolumeExpansion: boolean; provisioner: string }>;
    assert.equal(classes.find((c) => c.metadata.name === 'trireme')?.parameters.replicaCount, '3');
    assert.ok(classes.some((c) => c.parameters.replicaCount === '1'));
    assert.deepEqual([...new Set(classes.map((c) => c.reclaimPolicy))].sort(), ['Delete', 'Retain']);
    for (const c of classes) {
      assert.equal(c.allowVolumeExpansion, true);
      assert.equal(c.provisioner, 'csi.trireme.io');
    }
  });

  test('sidecars are pinned registry.k8s.io/sig-storage images; trireme containers run as non-root except the node plugin', () => {
    const pods = base.filter((m) => m.kind === 'Deployment' || m.kind === 'DaemonSet') as Array<Manifest & { spec: { template: { spec: { containers: Array<{ name: string; image: string; securityContext?: Record<string, unknown> }>; securityContext?: Record<string, unknown>; hostPID?: boolean } } } }>;
    const images = pods.flatMap((p) => p.spec.template.spec.containers.map((c) => c.image));
    for (const img of images.filter((i) => !i.includes('trireme'))) assert.match(img, /^registry\.k8s\.io\/sig-storage\/[a-z-]+:v\d+\.\d+\.\d+$/);
    for (const sidecar of ['csi-provisioner', 'csi-snapshotter', 'csi-resizer', 'livenessprobe', 'csi-node-driver-registrar']) assert.ok(images.some((i) => i.includes(`/${sidecar}:`)), sidecar);
    const controller = pods.find((p) => p.metadata.name === 'trireme-csi-controller');
    assert.equal(controller?.spec.template.spec.securityContext?.runAsNonRoot, true);
    const node = pods.find((p) => p.kind === 'DaemonSet');
    assert.equal(node?.spec.template.spec.hostPID, true);
    const plugin = node?.spec.template.spec.containers.find((c) => c.name === 'trireme') as { securityContext: { privileged: boolean }; volumeMounts: Array<{ mountPropagation?: string }> } | undefined;
    assert.equal(plugin?.securityContext.privileged, true);
    assert.ok(plugin?.volumeMounts.some((v) => v.mountPropagation === 'Bidirectional'));
    const replica = replicaDeployment(sample, 1, 'pi-2', { namespace: 'n', image: 'i', dataRoot: '/d', serviceAccount: 's' });
    assert.equal(replica.spec?.template.spec?.containers[0].securityContext?.runAsNonRoot, true);
  });

  test('the Grafana dashboard queries only metrics Trireme exports', () => {
    const dashboard = JSON.parse(readFileSync(join(REPO, 'deploy/examples/grafana-dashboard.json'), 'utf8')) as { panels: Array<{ targets: Array<{ expr: string }> }> };
    const sources = readdirSync(join(REPO, 'src'), { recursive: true, encoding: 'utf8' })
      .filter((f) => f.endsWith('.ts'))
      .map((f) => readFileSync(join(REPO, 'src', f), 'utf8'))
      .join('\n');
    const used = new Set(dashboard.panels.flatMap((p) => p.targets.flatMap((t) => t.expr.match(/trireme_[a-z_]+/g) ?? [])));
    assert.ok(used.size >= 12);
    for (const metric of used) assert.ok(sources.includes(`'${metric.replace(/_bucket$/, '')}'`), `${metric} is not defined in src`);
  });

  test("the controller container runs the image's entrypoint under the controller's node flags and malloc settings", () => {
    const settings = { namespace: 'n', image: 'i', dataRoot: '/d', serviceAccount: 's' };
    const container = controllerDeployment({ ...sample, spec: { ...sample.spec, chap: false } }, settings).spec?.template.spec?.containers[0];
    const dockerfile = readFileSync(join(REPO, 'deploy/Dockerfile'), 'utf8');
    const entrypoint = JSON.parse(/^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1] ?? '[]') as string[];
    assert.deepEqual(container?.command, [entrypoint[0], ...CONTROLLER_NODE_FLAGS, ...entrypoint.slice(1)]);
    assert.ok(CONTROLLER_NODE_FLAGS.includes('--expose-gc'), 'the idle collection needs gc()');
    assert.equal(container?.args?.[0], 'controller');
    assert.deepEqual(container?.env, [{ name: 'GLIBC_TUNABLES', value: CONTROLLER_GLIBC_TUNABLES }]);
    // The CHAP secret still comes from its Secret, beside the malloc settings.
    const chap = controllerDeployment(sample, settings).spec?.template.spec?.containers[0];
    assert.ok(chap?.env?.some((e) => e.name === 'TRIREME_CHAP_SECRET' && e.valueFrom?.secretKeyRef?.key === 'secret'));
    assert.ok(chap?.env?.some((e) => e.name === 'GLIBC_TUNABLES'));
  });

  test('a replica pod passes --size only to an empty data directory (the shell test, run for real)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'trireme-replica-cmd-'));
    try {
      const command = replicaCommand('pvc-x', 2, 1 << 30).map((a) => a.replaceAll('/data', dir));
      // `node` becomes `echo`, so the exec shows the argument list the replica would get.
      const serve = command.slice(4).map((a, i) => (i === 0 ? 'echo' : a));
      const runIt = async (): Promise<string> => (await promisify(execFile)(command[0], [command[1], command[2], command[3], ...serve])).stdout.trim();
      assert.equal(await runIt(), `${REPLICA_NODE_FLAGS.join(' ')} /app/deploy/entrypoint.js replica serve --dir ${dir} --listen 0.0.0.0:9700 --volume-id pvc-x --replica-id r2 --size ${1 << 30}`);
      await writeFile(join(dir, 'identity'), 'x');
      assert.equal(await runIt(), `${REPLICA_NODE_FLAGS.join(' ')} /app/deploy/entrypoint.js replica serve --dir ${dir} --listen 0.0.0.0:9700 --volume-id pvc-x --replica-id r2`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
