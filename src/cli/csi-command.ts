import { homedir } from 'node:os';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';
import { startHttpEndpoint } from '../common/http-endpoint';
import { parseHostPort } from '../common/host-port';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { orchestratorFactory, registeredOrchestrators, registerOrchestrator, type Orchestrator } from '../controller/csi';
import { startStack } from '../controller/manager/standalone-stack';
import { CsiLocalOrchestrator } from '../controller/orchestrator';
import type { ExecutorMode } from '../node';
import { startCsiDriver } from './csi-driver';
import { onShutdownSignal } from './signals';
import { VERSION } from './version';
import { triremeInvocation } from './up-command';

interface CsiOptions {
  endpoint: string;
  mode: string;
  nodeId?: string;
  orchestrator: string;
  data?: string;
  host: string;
  portalPort?: string;
  replicaPort?: string;
  managementPort?: string;
  metricsPort?: string;
  executor: string;
  stateDir: string;
  maxVolumes: string;
  deviceTimeout: string;
  metrics?: string;
  replicaNodeGrace: string;
}


// The standalone orchestrator: this process owns the local stack (volume
// records, controller and replica children) on the data directory. A second
// stack on the same directory is refused by startStack itself.
registerOrchestrator('local', async ({ logger, config }) => {
  const port = (key: string): number | undefined => (config[key] === undefined ? undefined : positiveInt(config[key], key));
  const ports = { portal: port('portal-port'), replica: port('replica-port'), management: port('management-port'), metrics: port('metrics-port') };
  const stack = await startStack({
    dataDir: config.data,
    logger,
    host: config.host,
    trireme: triremeInvocation(),
    demo: false,
    ports: Object.fromEntries(Object.entries(ports).filter(([, v]) => v !== undefined)),
  });
  const orchestrator = new CsiLocalOrchestrator(stack.orchestrator);
  return Object.assign(orchestrator, { close: () => stack.close() });
});

// The Kubernetes orchestrator (in-cluster); loaded only when chosen, the client library is large.
registerOrchestrator('kubernetes', async (o) => (await import('../controller/orchestrator/kubernetes/factory.js')).createKubernetesOrchestrator(o));

function positiveInt(text: string, flag: string): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(value)) throw new InvalidArgumentError(`--${flag} must be a non-negative integer, got "${text}"`);
  return value;
}

/** `trireme csi`: the CSI identity service plus the controller and/or node service on a unix socket. */
export function registerCsiCommand(program: Command, deps: { createLogger(): Logger }): void {
  program
    .command('csi')
    .description('serve the CSI driver (csi.trireme.io) on a unix socket')
    .requiredOption('--endpoint <unix://path>', 'CSI socket, e.g. unix:///csi/csi.sock ($CSI_ENDPOINT)', process.env.CSI_ENDPOINT)
    .option('--mode <mode>', 'services to run: controller, node or all', 'all')
    .option('--node-id <id>', 'this node\'s id (required for node and all; $NODE_ID)', process.env.NODE_ID)
    .option('--orchestrator <name>', 'what runs volumes for the controller service', 'local')
    .option('--data <dir>', 'data directory of the local orchestrator ($TRIREME_DATA, default ~/.trireme)')
    .option('--host <address>', 'local orchestrator: address controllers and replicas listen on', '127.0.0.1')
    .option('--portal-port <port>', 'local orchestrator: first iSCSI portal port (default 3260)')
    .option('--replica-port <port>', 'local orchestrator: first replica data port (default 9700)')
    .option('--management-port <port>', 'local orchestrator: first controller management port (default 9500)')
    .option('--metrics-port <port>', 'local orchestrator: first controller /metrics port (default 9600)')
    .option('--executor <kind>', 'how the node runs host tools: direct, or nsenter (inside a privileged pod with hostPID)', 'direct')
    .option('--state-dir <dir>', 'where the node plugin records staged volumes', '/var/lib/trireme/node')
    .option('--max-volumes <n>', 'volumes per node reported to the CO (0: no limit)', '0')
    .option('--device-timeout <ms>', 'how long to wait for a device after iSCSI login', '30000')
    .option('--metrics <host:port>', 'address of /metrics and /healthz (off unless given)')
    .option('--replica-node-grace <duration>', 'kubernetes orchestrator: replace a replica whose node is NotReady this long (e.g. 90s, 5m)', '5m')
    .action(async (options: CsiOptions) => {
      await runCsi(options, deps.createLogger());
    });
}

async function createOrchestrator(options: CsiOptions, logger: Logger): Promise<Orchestrator & { close?: () => Promise<void> }> {
  const factory = orchestratorFactory(options.orchestrator);
  if (!factory) throw new InvalidArgumentError(`unknown --orchestrator "${options.orchestrator}" (available: ${registeredOrchestrators().join(', ')})`);
  const data = options.data ?? process.env.TRIREME_DATA ?? join(homedir(), '.trireme');
  const config: Record<string, string> = { data, host: options.host, 'replica-node-grace': options.replicaNodeGrace };
  for (const [key, value] of [
    ['portal-port', options.portalPort],
    ['replica-port', options.replicaPort],
    ['management-port', options.managementPort],
    ['metrics-port', options.metricsPort],
  ] as const) {
    if (value !== undefined) config[key] = value;
  }
  return factory({ logger: logger.child({ component: 'orchestrator' }), config });
}

async function runCsi(options: CsiOptions, logger: Logger): Promise<void> {
  if (!['controller', 'node', 'all'].includes(options.mode)) throw new InvalidArgumentError(`--mode must be controller, node or all, got "${options.mode}"`);
  if (!['direct', 'nsenter'].includes(options.executor)) throw new InvalidArgumentError(`--executor must be direct or nsenter, got "${options.executor}"`);
  const withController = options.mode !== 'node';
  const withNode = options.mode !== 'controller';
  if (withNode && !options.nodeId) throw new InvalidArgumentError(`--node-id is required in mode ${options.mode}`);
  const maxVolumes = positiveInt(options.maxVolumes, 'max-volumes');
  const deviceTimeoutMs = positiveInt(options.deviceTimeout, 'device-timeout');
  const metricsAddress = options.metrics ? parseHostPort(options.metrics) : undefined;
  const registry = createRegistry({ labels: { role: 'csi' } });

  const orchestrator = withController ? await createOrchestrator(options, logger) : undefined;
  const node = withNode
    ? { nodeId: options.nodeId as string, executor: options.executor as ExecutorMode, stateDir: options.stateDir, maxVolumes, deviceTimeoutMs }
    : undefined;
  const server = await startCsiDriver({ endpoint: options.endpoint, orchestrator, node, logger, registry });
  const http = metricsAddress ? await startHttpEndpoint({ ...metricsAddress, registry, logger }) : undefined;
  logger.info({ mode: options.mode, endpoint: options.endpoint, nodeId: options.nodeId, version: VERSION }, 'csi driver ready');

  await onShutdownSignal(logger);
  await server.close();
  await http?.close();
  await orchestrator?.close?.();
}
