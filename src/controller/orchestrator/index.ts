export { LocalOrchestrator, DEFAULT_PORT_BASES, DEFAULT_REPLICAS, IQN_PREFIX, MAX_REPLICAS, MIN_VOLUME_SIZE } from './local-orchestrator';
export type { LocalOrchestratorOptions, PortBases, VolumeDescription } from './local-orchestrator';
export { VolumeRecords, VolumeNotFoundError, validateVolumeName } from './volume-records';
export type { ReplicaRecord, VolumeRecord } from './volume-records';
export { SupervisedChild, DEFAULT_BACKOFF } from './supervisor';
export type { BackoffPolicy, ChildSpec, ChildState, ChildStatus } from './supervisor';
export { allocatePort, isPortFree } from './ports';
export { replicaDir, volumeDir, waitForPort } from './volume-processes';
export type { TriremeInvocation } from './volume-processes';
