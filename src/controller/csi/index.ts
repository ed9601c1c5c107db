export { controllerService } from './controller-service';
export { mapOrchestratorError } from './mapping';
export { VOLUME_CONTEXT_KEYS } from '../../common/csi';
export {
  ORCHESTRATOR_ERRORS,
  OrchestratorError,
  orchestratorFactory,
  registerOrchestrator,
  registeredOrchestrators,
  type CapacityInfo,
  type ContentSource,
  type OrchestratedSnapshot,
  type OrchestratedVolume,
  type Orchestrator,
  type OrchestratorFactory,
  type VolumeHealth,
  type VolumeHealthState,
  type VolumeParameters,
} from './orchestrator';
export { DEFAULT_REPLICA_COUNT, MAX_REPLICA_COUNT, parseVolumeParameters } from './parameters';
export { DEFAULT_VOLUME_BYTES, SIZE_GRANULARITY, sizeForRange } from './sizing';
