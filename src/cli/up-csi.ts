import { hostname } from 'node:os';
import { join } from 'node:path';
import type { RunningCsiServer } from '../common/csi';
import type { Logger } from '../common/logger';
import type { Registry } from '../common/metrics';
import { CsiLocalOrchestrator } from '../controller/orchestrator/csi-orchestrator';
import type { LocalOrchestrator } from '../controller/orchestrator/local-orchestrator';
import { startCsiDriver } from './csi-driver';

/**
 * The CSI driver of `trireme up`: the same driver as `trireme csi --mode all`
 * on DATA/csi.sock, with the stack's own local orchestrator behind the
 * controller service, so volumes made through CSI and through `trireme volume`
 * are the same records. The node id is the host name; staged-volume state
 * lives in DATA/csi-node.
 */
export function startUpCsi(options: { dataDir: string; orchestrator: LocalOrchestrator; logger: Logger; registry?: Registry }): Promise<RunningCsiServer> {
  return startCsiDriver({
    endpoint: `unix://${join(options.dataDir, 'csi.sock')}`,
    orchestrator: new CsiLocalOrchestrator(options.orchestrator),
    node: { nodeId: hostname(), executor: 'direct', stateDir: join(options.dataDir, 'csi-node'), maxVolumes: 0, deviceTimeoutMs: 30_000 },
    logger: options.logger.child({ component: 'csi' }),
    registry: options.registry,
  });
}
