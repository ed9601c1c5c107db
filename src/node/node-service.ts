import { invalidArgument, type CsiRequest, type ServiceSpec } from '../common/csi';
import type { Logger } from '../common/logger';
import type { DeviceAcquirer } from './device-acquirer';
import type { HostExecutor } from './executor';
import { HostOps } from './host-ops';
import { MountTable } from './mount-table';
import type { NodeContext } from './node-context';
import { nodePublishVolume, nodeUnpublishVolume } from './publish';
import { nodeStageVolume, nodeUnstageVolume } from './stage';
import { StageStateStore } from './stage-state';
import { nodeExpandVolume, nodeGetVolumeStats } from './stats';

export const TOPOLOGY_NODE_KEY = 'topology.csi.trireme.io/node';

export interface NodeServiceOptions {
  readonly nodeId: string;
  /** Reported to the CO; 0 means no limit. */
  readonly maxVolumesPerNode: number;
  readonly executor: HostExecutor;
  readonly acquirer: DeviceAcquirer;
  /** Where staging records live (a hostPath that survives plugin restarts). */
  readonly stateDir: string;
  /** How long to wait for the device link after login. */
  readonly deviceTimeoutMs: number;
  readonly logger: Logger;
}

/**
 * Paths from the CO must be absolute (CSI: "MUST be an absolute path in the
 * root filesystem of the process serving this request"): a relative one would
 * resolve against this process's working directory, somewhere nobody meant.
 */
function withAbsolutePaths(fields: readonly string[], handler: (request: CsiRequest) => Promise<object>): (request: CsiRequest) => Promise<object> {
  return (request) => {
    for (const field of fields) {
      const value = request[field];
      if (typeof value === 'string' && value !== '' && (!value.startsWith('/') || value.split('/').includes('..'))) {
        throw invalidArgument(`${field} must be an absolute path without "..", got "${value}"`);
      }
    }
    return handler(request);
  };
}

const byVolume = (request: CsiRequest): string[] => [`node-volume:${String(request.volume_id ?? '')}`];

/** The CSI Node service: every RPC with its required fields and its per-volume lock. */
export function nodeService(options: NodeServiceOptions): ServiceSpec {
  const ctx: NodeContext = {
    host: new HostOps(options.executor),
    mounts: new MountTable(options.executor),
    acquirer: options.acquirer,
    states: new StageStateStore(options.stateDir),
    deviceTimeoutMs: options.deviceTimeoutMs,
    logger: options.logger,
  };
  return {
    NodeStageVolume: { required: ['volume_id', 'staging_target_path', 'volume_capability'], lockKeys: byVolume, handler: withAbsolutePaths(['staging_target_path'], (r) => nodeStageVolume(ctx, r)) },
    NodeUnstageVolume: { required: ['volume_id', 'staging_target_path'], lockKeys: byVolume, handler: withAbsolutePaths(['staging_target_path'], (r) => nodeUnstageVolume(ctx, r)) },
    NodePublishVolume: {
      required: ['volume_id', 'staging_target_path', 'target_path', 'volume_capability'],
      lockKeys: byVolume,
      handler: withAbsolutePaths(['staging_target_path', 'target_path'], (r) => nodePublishVolume(ctx, r)),
    },
    NodeUnpublishVolume: { required: ['volume_id', 'target_path'], lockKeys: byVolume, handler: withAbsolutePaths(['target_path'], (r) => nodeUnpublishVolume(ctx, r)) },
    // Stats take no lock: kubelet polls them while other calls run, and they only read.
    NodeGetVolumeStats: { required: ['volume_id', 'volume_path'], handler: withAbsolutePaths(['volume_path', 'staging_target_path'], (r) => nodeGetVolumeStats(ctx, r)) },
    NodeExpandVolume: { required: ['volume_id', 'volume_path'], lockKeys: byVolume, handler: withAbsolutePaths(['volume_path', 'staging_target_path'], (r) => nodeExpandVolume(ctx, r)) },
    NodeGetCapabilities: {
      handler: async () => ({
        capabilities: ['STAGE_UNSTAGE_VOLUME', 'GET_VOLUME_STATS', 'EXPAND_VOLUME', 'VOLUME_CONDITION', 'SINGLE_NODE_MULTI_WRITER'].map((type) => ({ rpc: { type } })),
      }),
    },
    NodeGetInfo: {
      handler: async () => ({
        node_id: options.nodeId,
        max_volumes_per_node: options.maxVolumesPerNode,
        accessible_topology: { segments: { [TOPOLOGY_NODE_KEY]: options.nodeId } },
      }),
    },
  };
}

/** Node readiness for Probe: the host tools and the acquirer's tools answer. */
export function nodeReadinessCheck(executor: HostExecutor, acquirer: DeviceAcquirer): () => Promise<boolean> {
  return async () => {
    await executor.run('blkid', ['-V'], { timeoutMs: 5000 });
    await executor.run('mount', ['-V'], { timeoutMs: 5000 });
    return acquirer.ready();
  };
}
