export { VolumeEngine, type EngineStatus, type ReplicaStatusView, type VolumeEngineOptions } from './volume-engine';
export { LinkErrorCode, ReplicaLinkError, type EpochRun, type ReplicaLink, type ReplicaLinkStatus } from './replica-link';
export { quorum, decideAck, nextMode, volumeState, type ReplicaMode, type VolumeState } from './ack-policy';
export { DEFAULT_TUNING, type EngineTuning } from './engine-config';
export { systemClock, type Clock } from './clock';
export { NetworkReplicaLink, type NetworkReplicaLinkOptions } from './network-replica-link';
export { SnapshotManager } from './snapshots';
