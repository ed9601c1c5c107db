/**
 * The replica area's public surface: the store contract, the in-memory store,
 * the data-path protocol, its server and client, and the gRPC control client.
 * The disk store is opened through ./store (openReplicaStore).
 */
export * from './store-types';
export { MemoryReplicaStore } from './memory-store';
export * as wire from './wire';
export { startReplicaServer, type ReplicaServer, type ReplicaServerOptions } from './server/replica-server';
export { ReplicaClient, type ReplicaClientOptions, type PingResult } from './client/replica-client';
export { ReplicaClientError, ClientErrorCode } from './client/client-errors';
export { ReplicaControlClient, ReplicaControlError } from './client/control-client';
export { DEFAULT_DATA_PORT } from './wire/protocol';
export { EpochRunLog, clipRuns } from './store/epoch-runs';
