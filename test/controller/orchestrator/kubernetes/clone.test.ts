import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { KubeConfig } from '@kubernetes/client-node';
import { errorCode } from '../../../../src/common/errors';
import { silentLogger } from '../../../../src/common/logger';
import { NetworkReplicaLink } from '../../../../src/controller/engine/network-replica-link';
import { EngineHost } from '../../../../src/controller/management/engine-host';
import { ManagementClient } from '../../../../src/controller/management/management-client';
import { KubeClient, KubernetesOrchestrator, type TriremeVolume } from '../../../../src/controller/orchestrator/kubernetes';
import { ReplicaControlClient } from '../../../../src/replica/client/control-client';
import { ReplicaProcesses } from '../../engine/support/replica-processes';
import { harness, NS, runRealController, SETTINGS, type Harness, type RealControllerPod } from './support';

/**
 * Clones through the Kubernetes orchestrator. The API server is the in-process
 * fake (no kube-apiserver can run here), so no pod ever starts: the test plays
 * the kubelet with REAL `trireme replica` processes on loopback for the source
 * volume and for each clone, and a real volume engine behind the real
 * management gRPC API as the source's controller. The orchestrator reaches the
 * replicas by their Service names through its injectable resolver, mapped here
 * to the local processes' ports. The data copy, the reset of a half copy and
 * the controller start on the copied replicas are the real code paths.
 */

const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const SRC = 'pvc-c10e0000-0000-4000-8000-000000000001';
const FROM_SNAP = 'pvc-c10e0000-0000-4000-8000-000000000002';
const FROM_VOL = 'pvc-c10e0000-0000-4000-8000-000000000003';
const CHILD_ENV = 'TRIREME_TEST_CLONE_CHILD';

const serviceAddress = (id: string, index: number): string => `${id}-r${index}.${NS}.svc:9700`;
const managementAddress = (id: string): string => `${id}-ctl.${NS}.svc:9500`;

if (process.env[CHILD_ENV]) {
  // The CSI controller process of the crash test: it runs one CreateVolume and is SIGKILLed mid-copy by the parent.
  void runChild(JSON.parse(process.env[CHILD_ENV]) as ChildPlan).then(
    () => process.exit(0),
    (err: unknown) => {
      process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
      process.exit(1);
    },
  );
} else {
  defineTests();
}

/** Reads from the start in pieces of one replica frame (1 MiB), as the target hands reads to the engine. */
async function readAll(device: { read(offset: number, length: number): Promise<Buffer> }, length: number): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < length; at += MiB) parts.push(await device.read(at, Math.min(MiB, length - at)));
  return Buffer.concat(parts);
}

interface ChildPlan {
  server: string;
  resolve: Record<string, string>;
  controls: Record<string, string>;
  name: string;
  size: number;
  source: string;
}

async function runChild(plan: ChildPlan): Promise<void> {
  const config = new KubeConfig();
  config.loadFromOptions({
    clusters: [{ name: 'fake', server: plan.server, skipTLSVerify: true }],
    users: [{ name: 'csi', token: 'fake-token' }],
    contexts: [{ name: 'fake', cluster: 'fake', user: 'csi' }],
    currentContext: 'fake',
  });
  const orchestrator = new KubernetesOrchestrator({
    kube: new KubeClient(config, NS),
    settings: SETTINGS,
    logger: silentLogger(),
    connect: (address) => new ManagementClient(plan.controls[address] ?? address, 10_000),
    resolveReplica: (address) => plan.resolve[address] ?? address,
  });
  await orchestrator.createVolume(plan.name, plan.size, { replicaCount: 3, fsType: 'ext4', chap: false }, { kind: 'volume', volumeId: plan.source });
}

function defineTests(): void {
  describe('Kubernetes orchestrator clones, copied between real replica processes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'trireme-k8s-clone-'));
    const resolve = new Map<string, string>();
    const replicas = new Map<string, ReplicaProcesses>();
    let h: Harness;
    let host: EngineHost | undefined;
    let pod: RealControllerPod | undefined;
    let port = 0;
    const cr = (id: string): TriremeVolume | undefined => h.api.get('trireme.io', 'triremevolumes', NS, id) as unknown as TriremeVolume | undefined;
    const controller = (id: string) => h.api.get('apps', 'deployments', NS, `${id}-ctl`);
    const sourceControl = () => new ManagementClient(`127.0.0.1:${port}`, 10_000);

    /** Allocates ports for a volume's replicas and maps their Service names to them; the processes start later. */
    async function replicasOf(id: string, count: number): Promise<ReplicaProcesses> {
      const processes = new ReplicaProcesses(join(dir, id), SIZE, id);
      await processes.allocate(count);
      for (let i = 0; i < count; i++) resolve.set(serviceAddress(id, i), `127.0.0.1:${processes.ports[i]}`);
      replicas.set(id, processes);
      return processes;
    }

    async function epochOf(processes: ReplicaProcesses, i: number): Promise<number> {
      const client = new ReplicaControlClient(`127.0.0.1:${processes.ports[i]}`);
      try {
        return (await client.status()).epoch;
      } finally {
        client.close();
      }
    }

    before(async () => {
      h = await harness(['pi-1', 'pi-2', 'pi-3'], (address) => {
        assert.equal(address, managementAddress(SRC), 'only the source volume has a controller');
        return sourceControl();
      }, { resolveReplica: (address) => resolve.get(address) ?? address, cloneReachableTimeoutMs: 20_000 });
      const source = await replicasOf(SRC, 3);
      await Promise.all([0, 1, 2].map((i) => source.start(i)));
      await h.orchestrator.createVolume(SRC, SIZE, { replicaCount: 3, fsType: 'ext4', chap: false });
      // The source's controller, as its pod would run it: the engine opens the replicas the Deployment names.
      const connect = (address: string): NetworkReplicaLink => new NetworkReplicaLink({ address: resolve.get(address) ?? address, logger: silentLogger(), timeoutMs: 5000, volumeId: SRC });
      pod = await runRealController(h, SRC, connect, { opTimeoutMs: 5000, probeIntervalMs: 200, openTimeoutMs: 20_000 });
      ({ host, port } = pod);
    });

    after(async () => {
      await h?.close();
      await pod?.close();
      for (const processes of replicas.values()) await processes.killAll();
      rmSync(dir, { recursive: true, force: true });
    });

    test('a clone from a snapshot holds the snapshot, not later writes, and its controller opens the copy', { timeout: 120_000 }, async () => {
      assert.ok(host);
      await host.write(0, Buffer.alloc(MiB, 0x11));
      await host.write(8 * MiB, Buffer.alloc(512 * 1024, 0x22));
      const snap = await h.orchestrator.createSnapshot('before-overwrite', SRC);
      assert.equal(snap.sizeBytes, SIZE, 'the restore size is the source volume size');
      await host.write(0, Buffer.alloc(MiB, 0x33));
      await host.write(16 * MiB, Buffer.alloc(MiB, 0x44));
      const expected = Buffer.alloc(SIZE);
      expected.fill(0x11, 0, MiB);
      expected.fill(0x22, 8 * MiB, 8 * MiB + 512 * 1024);

      const clone = await replicasOf(FROM_SNAP, 2);
      const created = h.orchestrator.createVolume(FROM_SNAP, SIZE, { replicaCount: 2, fsType: 'xfs', chap: false }, { kind: 'snapshot', snapshotId: snap.snapshotId });
      // Until its replicas answer, the clone is recorded with its source, its replica workloads exist, and no controller does.
      for (let i = 0; i < 50 && !h.api.get('apps', 'deployments', NS, `${FROM_SNAP}-r1`); i++) await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(cr(FROM_SNAP)?.spec.clone, { kind: 'snapshot', sourceId: snap.snapshotId, volume: SRC, snapshot: 'before-overwrite' });
      assert.notEqual(cr(FROM_SNAP)?.status?.phase, 'Ready');
      assert.ok(h.api.get('apps', 'deployments', NS, `${FROM_SNAP}-r0`));
      assert.equal(controller(FROM_SNAP), undefined, 'no controller while the copy is not whole');
      assert.equal(await h.orchestrator.findVolumeByName(FROM_SNAP), undefined, 'a clone being copied is not reported as made');
      await Promise.all([0, 1].map((i) => clone.start(i)));
      const v = await created;

      assert.deepEqual(v.contentSource, { kind: 'snapshot', snapshotId: snap.snapshotId });
      assert.equal(cr(FROM_SNAP)?.status?.phase, 'Ready');
      assert.ok(controller(FROM_SNAP), 'the controller Deployment is made once the copy is whole');
      for (const i of [0, 1]) assert.ok((await clone.image(i, await epochOf(clone, i))).equals(expected), `clone replica ${i} holds the snapshot's image`);
      // What the clone's controller pod does on its first start: open the copied replicas, then serve reads and writes.
      const engine = await clone.openEngine([0, 1], 5000);
      try {
        assert.ok((await readAll(engine, 9 * MiB)).equals(expected.subarray(0, 9 * MiB)));
        await engine.write(0, Buffer.alloc(4096, 0x55));
        assert.deepEqual(await engine.read(0, 4096), Buffer.alloc(4096, 0x55));
      } finally {
        await engine.close();
      }
      assert.deepEqual(await host.read(0, 4096), Buffer.alloc(4096, 0x33), 'the source is untouched');
      // The same request again answers the same volume; another source for the name is refused.
      assert.equal((await h.orchestrator.createVolume(FROM_SNAP, SIZE, { replicaCount: 2, fsType: 'xfs', chap: false }, { kind: 'snapshot', snapshotId: snap.snapshotId })).volumeId, FROM_SNAP);
      await assert.rejects(h.orchestrator.createVolume(FROM_SNAP, SIZE, { replicaCount: 2, fsType: 'xfs', chap: false }, { kind: 'volume', volumeId: SRC }), (err) => errorCode(err) === 'ERR_ALREADY_EXISTS');
    });

    test('bad clone sources are refused before anything is made', async () => {
      const params = { replicaCount: 1, fsType: 'ext4' as const, chap: false };
      const before = h.api.list('trireme.io', 'triremevolumes', NS).length;
      await assert.rejects(h.orchestrator.createVolume('pvc-bad-1', SIZE, params, { kind: 'snapshot', snapshotId: `${SRC}@no-such-snapshot` }), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
      await assert.rejects(h.orchestrator.createVolume('pvc-bad-2', SIZE, params, { kind: 'snapshot', snapshotId: 'pvc-nope@x' }), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
      await assert.rejects(h.orchestrator.createVolume('pvc-bad-3', SIZE, params, { kind: 'volume', volumeId: 'pvc-nope' }), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
      await assert.rejects(h.orchestrator.createVolume('pvc-bad-4', SIZE / 2, params, { kind: 'volume', volumeId: SRC }), (err) => errorCode(err) === 'ERR_OUT_OF_RANGE');
      assert.equal(h.api.list('trireme.io', 'triremevolumes', NS).length, before);
    });

    test('a volume clone whose CSI process is SIGKILLed mid-copy is redone from scratch by the retry, and its snapshot goes', { timeout: 120_000 }, async () => {
      assert.ok(host);
      // Enough data that the copy takes a while: the kill lands in the middle of it.
      for (let at = 0; at < 24 * MiB; at += MiB) await host.write(at, Buffer.alloc(MiB, (at / MiB) % 200 + 1));
      const expected = await host.read(0, SIZE);
      const clone = await replicasOf(FROM_VOL, 3);
      await Promise.all([0, 1, 2].map((i) => clone.start(i)));
      const plan: ChildPlan = {
        server: h.kube.config.getCurrentCluster()?.server ?? '',
        resolve: Object.fromEntries(resolve),
        controls: { [managementAddress(SRC)]: `127.0.0.1:${port}` },
        name: FROM_VOL,
        size: SIZE,
        source: SRC,
      };
      const child = spawn(process.execPath, [__filename], { env: { ...process.env, [CHILD_ENV]: JSON.stringify(plan) }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
      const exited = new Promise<number | null>((res) => child.once('exit', (code) => res(code)));
      const targets = [0, 1, 2].map((i) => new ReplicaControlClient(`127.0.0.1:${clone.ports[i]}`));
      try {
        // Kill the CSI process once the second target is being filled (targets are filled in order): one whole copy, one partial, one untouched.
        let copying = false;
        const deadline = Date.now() + 60_000;
        while (!copying && Date.now() < deadline && child.exitCode === null) {
          const s = await targets[1].status();
          copying = s.lastSeq > 0 || s.rebuildBase !== null;
          if (!copying) await new Promise((r) => setTimeout(r, 2));
        }
        assert.ok(copying, `the copy never started (child exit ${child.exitCode}): ${stderr}`);
        child.kill('SIGKILL');
        await exited;
        const states = await Promise.all(targets.map((t) => t.status()));
        if (process.env.TEST_LOG_LEVEL) process.stderr.write(`after the kill: ${JSON.stringify(states.map((s) => ({ lastSeq: s.lastSeq, rebuildBase: s.rebuildBase })))}\n`);
        assert.ok(states[0].lastSeq > 0, 'the first target holds a whole copy, which the retry must still redo');
        assert.ok(states.some((s) => s.rebuildBase !== null || s.lastSeq === 0), `the kill left a half copy: ${JSON.stringify(states.map((s) => [s.lastSeq, s.rebuildBase]))}`);
      } finally {
        for (const t of targets) t.close();
      }
      // What the crash left: a clone resource still populating, no controller, the snapshot cut for it on the source.
      assert.deepEqual(cr(FROM_VOL)?.spec.clone, { kind: 'volume', sourceId: SRC, volume: SRC, snapshot: `clone-for-${FROM_VOL}` });
      assert.notEqual(cr(FROM_VOL)?.status?.phase, 'Ready');
      assert.equal(controller(FROM_VOL), undefined);
      assert.ok((await sourceControl().listSnapshots()).some((s) => s.name === `clone-for-${FROM_VOL}`));
      assert.equal(await h.orchestrator.findVolumeByName(FROM_VOL), undefined);

      // external-provisioner retries CreateVolume (here: the restarted CSI controller's orchestrator).
      const started = performance.now();
      const cpu = process.cpuUsage();
      const v = await h.orchestrator.createVolume(FROM_VOL, SIZE, { replicaCount: 3, fsType: 'ext4', chap: false }, { kind: 'volume', volumeId: SRC });
      if (process.env.TEST_LOG_LEVEL) {
        const used = process.cpuUsage(cpu);
        process.stderr.write(`retry: reset and copy of 24 MiB into 3 replicas in ${Math.round(performance.now() - started)} ms, orchestrator CPU ${Math.round((used.user + used.system) / 1000)} ms\n`);
      }
      assert.deepEqual(v.contentSource, { kind: 'volume', volumeId: SRC });
      assert.equal(cr(FROM_VOL)?.status?.phase, 'Ready');
      assert.ok(controller(FROM_VOL));
      for (const i of [0, 1, 2]) assert.ok((await clone.image(i, await epochOf(clone, i))).equals(expected), `clone replica ${i} holds the source's image`);
      assert.ok(!(await sourceControl().listSnapshots()).some((s) => s.name === `clone-for-${FROM_VOL}`), 'the snapshot cut for the clone is gone');
      const engine = await clone.openEngine([0, 1, 2], 5000);
      try {
        assert.ok((await readAll(engine, SIZE)).equals(expected));
      } finally {
        await engine.close();
      }
    });
  });
}
