import type { CsiRequest, ServiceSpec } from '../../common/csi';
import type { Orchestrator } from './orchestrator';
import { createSnapshot, deleteSnapshot, listSnapshots } from './snapshot-handlers';
import { controllerExpandVolume, controllerGetVolume, createVolume, deleteVolume, getCapacity, listVolumes, validateVolumeCapabilities } from './volume-handlers';

const CAPABILITIES = [
  'CREATE_DELETE_VOLUME',
  'LIST_VOLUMES',
  'GET_CAPACITY',
  'CREATE_DELETE_SNAPSHOT',
  'LIST_SNAPSHOTS',
  'EXPAND_VOLUME',
  'VOLUME_CONDITION',
  'GET_VOLUME',
  'SINGLE_NODE_MULTI_WRITER',
];

const volumeKey = (request: CsiRequest): string[] => [`volume:${String(request.volume_id ?? '')}`];

/**
 * The CSI Controller service over an orchestrator. ControllerPublish/Unpublish
 * are not offered (PUBLISH_UNPUBLISH_VOLUME is not advertised: any node may log
 * in to a volume's target) and ControllerModifyVolume neither: grpc-js answers
 * UNIMPLEMENTED for both, as the spec asks.
 */
export function controllerService(orchestrator: Orchestrator): ServiceSpec {
  return {
    CreateVolume: {
      required: ['name', 'volume_capabilities'],
      // The name is what makes CreateVolume idempotent, so it is what is locked;
      // a clone also holds its source so the source cannot be deleted mid-copy.
      lockKeys: (r) => {
        const source = r.volume_content_source as { volume?: { volume_id?: string } } | null;
        return [`volume-name:${String(r.name)}`, ...(source?.volume?.volume_id ? [`volume:${source.volume.volume_id}`] : [])];
      },
      handler: (r) => createVolume(orchestrator, r),
    },
    DeleteVolume: { required: ['volume_id'], lockKeys: volumeKey, handler: (r) => deleteVolume(orchestrator, r) },
    ValidateVolumeCapabilities: { required: ['volume_id', 'volume_capabilities'], handler: (r) => validateVolumeCapabilities(orchestrator, r) },
    ListVolumes: { handler: (r) => listVolumes(orchestrator, r) },
    GetCapacity: { handler: (r) => getCapacity(orchestrator, r) },
    ControllerGetCapabilities: {
      handler: async () => ({ capabilities: [...CAPABILITIES, ...(orchestrator.supportsClones ? ['CLONE_VOLUME'] : [])].map((type) => ({ rpc: { type } })) }),
    },
    ControllerGetVolume: { required: ['volume_id'], handler: (r) => controllerGetVolume(orchestrator, r) },
    ControllerExpandVolume: { required: ['volume_id', 'capacity_range'], lockKeys: volumeKey, handler: (r) => controllerExpandVolume(orchestrator, r) },
    CreateSnapshot: {
      required: ['source_volume_id', 'name'],
      lockKeys: (r) => [`snapshot-name:${String(r.name)}`, `volume:${String(r.source_volume_id)}`],
      handler: (r) => createSnapshot(orchestrator, r),
    },
    DeleteSnapshot: { required: ['snapshot_id'], lockKeys: (r) => [`snapshot:${String(r.snapshot_id)}`], handler: (r) => deleteSnapshot(orchestrator, r) },
    ListSnapshots: { handler: (r) => listSnapshots(orchestrator, r) },
  };
}
