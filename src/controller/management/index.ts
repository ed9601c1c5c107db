export { ManagementServer, controllerServiceDefinition } from './management-server';
export { ManagementClient } from './management-client';
export { CODE_METADATA_KEY, bindServer, callUnary, loadProto, lookup, shutdownServer, unary } from './grpc-support';
export type { RebuildProgressView, ReplicaModeName, ReplicaStatusView, SnapshotView, VolumeControl, VolumeStateName, VolumeStatusView } from './volume-control';
export { SNAPSHOT_NAME } from './volume-control';
