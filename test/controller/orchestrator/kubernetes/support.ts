import { createRootLogger, silentLogger } from '../../../../src/common/logger';
import { createRegistry } from '../../../../src/common/metrics';
import type { EngineTuning } from '../../../../src/controller/engine/engine-config';
import type { ReplicaLink } from '../../../../src/controller/engine/replica-link';
import { EngineHost } from '../../../../src/controller/management/engine-host';
import { ManagementServer } from '../../../../src/controller/management/management-server';
import { KubeClient, KubernetesOrchestrator, Reconciler, type ControlConnector, type WorkloadSettings } from '../../../../src/controller/orchestrator/kubernetes';
import type { KubernetesOrchestratorOptions } from '../../../../src/controller/orchestrator/kubernetes/kubernetes-orchestrator';
import type { ReconcilerOptions } from '../../../../src/controller/orchestrator/kubernetes/reconciler';
import { FakeApiServer, node } from './fake-api-server';
import { FakeVolumeControl } from './fake-volume-control';

export const NS = 'trireme-system';
export const SETTINGS: WorkloadSettings = { namespace: NS, image: 'ghcr.io/trireme/trireme:0.1.0', dataRoot: '/var/lib/trireme/volumes', serviceAccount: 'trireme-volume' };

export interface Harness {
  api: FakeApiServer;
  kube: KubeClient;
  orchestrator: KubernetesOrchestrator;
  controls: Map<string, FakeVolumeControl>;
  newReconciler(resyncMs?: number, extra?: Partial<ReconcilerOptions>): Reconciler;
  /** Plays the kubelet starting the controller pod: its replica set and size come from the Deployment's args. */
  bootController(volumeId: string): FakeVolumeControl;
  close(): Promise<void>;
}

export async function harness(nodes = ['pi-1', 'pi-2', 'pi-3'], realConnect?: ControlConnector, extra: Partial<KubernetesOrchestratorOptions> = {}): Promise<Harness> {
  const api = new FakeApiServer();
  await api.listen();
  for (const n of nodes) api.put('', 'nodes', '', node(n));
  const kube = new KubeClient(api.kubeConfig(), NS);
  const controls = new Map<string, FakeVolumeControl>();
  const fakeConnect = (address: string): FakeVolumeControl => {
    let c = controls.get(address);
    if (!c) {
      c = new FakeVolumeControl(address);
      controls.set(address, c);
    }
    return c;
  };
  const connect: ControlConnector = realConnect ?? fakeConnect;
  const logger = createRootLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const orchestrator = new KubernetesOrchestrator({ kube, settings: SETTINGS, logger, connect, nodeSelector: { 'trireme.io/storage': 'true' }, nodeCapacityBytes: 64 * 1024 ** 3, ...extra });
  const reconcilers: Reconciler[] = [];
  return {
    api,
    kube,
    orchestrator,
    controls,
    newReconciler(resyncMs = 60_000, more = {}) {
      const r = new Reconciler({ kube, settings: SETTINGS, logger, connect, nodeSelector: { 'trireme.io/storage': 'true' }, resyncMs, ...more });
      reconcilers.push(r);
      return r;
    },
    bootController(volumeId) {
      const d = api.get('apps', 'deployments', NS, `${volumeId}-ctl`);
      const args = ((d?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0].args) ?? [];
      const c = fakeConnect(`${volumeId}-ctl.${NS}.svc:9500`);
      c.replicas = args.flatMap((a, i) => (args[i - 1] === '--replica' ? [a] : []));
      c.sizeBytes = Number(args[args.indexOf('--size') + 1]);
      return c;
    },
    async close() {
      for (const r of reconcilers) await r.stop();
      orchestrator.close();
      await api.close();
    },
  };
}

/** Polls until `check` holds (watch-driven work happens asynchronously). */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`condition not met within ${timeoutMs} ms`);
}

export interface RealControllerPod {
  readonly host: EngineHost;
  readonly server: ManagementServer;
  /** Port of the management server on 127.0.0.1 (what the volume's Service name resolves to in the test). */
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Plays the kubelet starting a volume's controller pod for real: a volume
 * engine opened with the replica addresses and IQN of the controller
 * Deployment the orchestrator made, behind a real management gRPC server.
 */
export async function runRealController(h: Harness, volumeId: string, connect: (address: string) => ReplicaLink, tuning: Partial<EngineTuning>): Promise<RealControllerPod> {
  const deployment = h.api.get('apps', 'deployments', NS, `${volumeId}-ctl`);
  const args = (deployment?.spec as { template: { spec: { containers: Array<{ args: string[] }> } } }).template.spec.containers[0].args;
  const host = await EngineHost.open({
    volume: volumeId,
    addresses: args.filter((_, i) => args[i - 1] === '--replica'),
    connect,
    logger: silentLogger(),
    registry: createRegistry({ defaultMetrics: false }),
    tuning,
    iqn: args[args.indexOf('--iqn') + 1],
    portal: '127.0.0.1:3260',
    sessions: () => 0,
  });
  const server = new ManagementServer(host, silentLogger());
  const { port } = await server.listen('127.0.0.1', 0);
  return {
    host,
    server,
    port,
    close: async () => {
      await server.close();
      await host.close();
    },
  };
}
