import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { identityService, startCsiServer } from '../common/csi';
import type { Logger } from '../common/logger';
import type { Registry } from '../common/metrics';
import { controllerService } from '../controller/csi';
import type { LocalOrchestrator } from '../controller/orchestrator/local-orchestrator';
import { CsiLocalOrchestrator } from '../controller/orchestrator/csi-orchestrator';
import { createExecutor, IscsiAcquirer, nodeReadinessCheck, nodeService } from '../node';

const VERSION: string = (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The CSI driver of `trireme up`: identity, controller and node services
 * (mode all, as `trireme csi --mode all`) on DATA/csi.sock, with the stack's
 * own local orchestrator behind the controller service, so volumes made
 * through CSI and through `trireme volume` are the same records. The node id
 * is the host name; staged-volume state lives in DATA/csi-node.
 */
export async function startUpCsi(options: { dataDir: string; orchestrator: LocalOrchestrator; logger: Logger; registry?: Registry }): Promise<{ socketPath: string; close(): Promise<void> }> {
  const logger = options.logger.child({ component: 'csi' });
  const orchestrator = new CsiLocalOrchestrator(options.orchestrator);
  const nodeLogger = logger.child({ component: 'node' });
  const executor = createExecutor('direct', nodeLogger);
  const acquirer = new IscsiAcquirer(executor, nodeLogger);
  const node = nodeService({ nodeId: hostname(), maxVolumesPerNode: 0, executor, acquirer, stateDir: join(options.dataDir, 'csi-node'), deviceTimeoutMs: 30_000, logger: nodeLogger });
  const identity = identityService({
    version: VERSION,
    controllerService: true,
    readinessChecks: [
      { name: 'orchestrator', check: () => orchestrator.ready() },
      { name: 'host-tools', check: nodeReadinessCheck(executor, acquirer) },
    ],
    logger,
  });
  return startCsiServer({ endpoint: `unix://${join(options.dataDir, 'csi.sock')}`, identity, controller: controllerService(orchestrator), node, logger, registry: options.registry });
}
