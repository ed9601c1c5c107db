import { identityService, startCsiServer, type RunningCsiServer, type ServiceSpec } from '../common/csi';
import type { Logger } from '../common/logger';
import type { Registry } from '../common/metrics';
import { controllerService, type Orchestrator } from '../controller/csi';
import { createExecutor, IscsiAcquirer, nodeReadinessCheck, nodeService, type ExecutorMode, type HostExecutor } from '../node';
import { VERSION } from './version';

export interface CsiDriverOptions {
  readonly endpoint: string;
  /** Serves the controller service over this orchestrator when given. */
  readonly orchestrator?: Orchestrator;
  /** Serves the node service when given. */
  readonly node?: {
    nodeId: string;
    /** How host tools run: by mode name, or an executor of the caller's (a test's VM guest). */
    executor: ExecutorMode | HostExecutor;
    stateDir: string;
    maxVolumes: number;
    deviceTimeoutMs: number;
  };
  readonly logger: Logger;
  readonly registry?: Registry;
}

/**
 * Identity plus the controller and/or node service on one socket. Exported so
 * that other entry points (the standalone stack) serve the same driver.
 */
export async function startCsiDriver(options: CsiDriverOptions): Promise<RunningCsiServer> {
  const { logger } = options;
  const readinessChecks: Array<{ name: string; check: () => Promise<boolean> }> = [];
  let controller: ServiceSpec | undefined;
  let node: ServiceSpec | undefined;
  const orchestrator = options.orchestrator;
  if (orchestrator) {
    controller = controllerService(orchestrator);
    readinessChecks.push({ name: 'orchestrator', check: () => orchestrator.ready() });
  }
  if (options.node) {
    const nodeLogger = logger.child({ component: 'node' });
    const given = options.node.executor;
    const executor = typeof given === 'string' ? createExecutor(given, nodeLogger) : given;
    const acquirer = new IscsiAcquirer(executor, nodeLogger);
    node = nodeService({ ...options.node, maxVolumesPerNode: options.node.maxVolumes, executor, acquirer, logger: nodeLogger });
    readinessChecks.push({ name: 'host-tools', check: nodeReadinessCheck(executor, acquirer) });
  }
  const identity = identityService({ version: VERSION, controllerService: Boolean(orchestrator), readinessChecks, logger });
  return startCsiServer({ endpoint: options.endpoint, identity, controller, node, logger, registry: options.registry });
}

