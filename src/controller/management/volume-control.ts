/**
 * What the management API needs from a running volume. The controller process
 * implements it over its volume engine (engine-control.ts); the API layer knows
 * nothing else of the engine, so the two can change independently.
 * Field names follow proto/controller.proto in lowerCamel.
 */
export type ReplicaModeName = 'RW' | 'WO' | 'ERR';
export type VolumeStateName = 'healthy' | 'degraded' | 'rebuilding' | 'offline';

export interface RebuildProgressView {
  readonly kind: 'delta' | 'full';
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly rateBytesPerSecond: number;
  /** Negative when unknown (no progress yet). */
  readonly etaSeconds: number;
}

export interface ReplicaStatusView {
  readonly address: string;
  readonly mode: ReplicaModeName;
  /** Why the replica is in ERR; empty in RW and WO. */
  readonly error: string;
  readonly rebuild: RebuildProgressView | null;
}

export interface VolumeStatusView {
  readonly volume: string;
  readonly sizeBytes: number;
  readonly state: VolumeStateName;
  readonly epoch: number;
  readonly seq: number;
  readonly replicas: ReplicaStatusView[];
  readonly iqn: string;
  readonly portal: string;
  readonly sessions: number;
}

export interface SnapshotView {
  readonly name: string;
  readonly seq: number;
  readonly epoch: number;
  readonly createdAt: string;
  readonly sizeBytes: number;
}

export interface VolumeControl {
  status(): VolumeStatusView;
  expand(sizeBytes: number): Promise<void>;
  createSnapshot(name: string): Promise<SnapshotView>;
  listSnapshots(): Promise<SnapshotView[]>;
  deleteSnapshot(name: string): Promise<void>;
  revertSnapshot(name: string): Promise<void>;
  addReplica(address: string): Promise<void>;
  removeReplica(address: string): Promise<void>;
}

/** Snapshot names travel into file-system-free catalogs and URLs: keep them plain. */
export const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
