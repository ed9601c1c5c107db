/**
 * The CSI v1 messages as @grpc/proto-loader hands them over (keepCase, enums as
 * strings, int64 as number, defaults filled, oneofs named): only the fields
 * Trireme reads or writes. Field names are the spec's snake_case, so a reader can
 * match them against proto/csi.proto and the CSI specification directly.
 */
export type StringMap = Record<string, string>;

export type AccessModeName =
  | 'UNKNOWN'
  | 'SINGLE_NODE_WRITER'
  | 'SINGLE_NODE_READER_ONLY'
  | 'MULTI_NODE_READER_ONLY'
  | 'MULTI_NODE_SINGLE_WRITER'
  | 'MULTI_NODE_MULTI_WRITER'
  | 'SINGLE_NODE_SINGLE_WRITER'
  | 'SINGLE_NODE_MULTI_WRITER';

export interface VolumeCapability {
  block?: Record<string, never> | null;
  mount?: { fs_type?: string; mount_flags?: string[]; volume_mount_group?: string } | null;
  access_mode?: { mode?: AccessModeName } | null;
  access_type?: 'block' | 'mount';
}

export interface CapacityRange {
  required_bytes?: number;
  limit_bytes?: number;
}

export interface VolumeContentSource {
  snapshot?: { snapshot_id?: string } | null;
  volume?: { volume_id?: string } | null;
  type?: 'snapshot' | 'volume';
}

export interface Topology {
  segments: StringMap;
}

export interface Volume {
  capacity_bytes: number;
  volume_id: string;
  volume_context: StringMap;
  content_source?: VolumeContentSource | null;
  accessible_topology?: Topology[];
}

export interface VolumeCondition {
  abnormal: boolean;
  message: string;
}

export interface Timestamp {
  seconds: number;
  nanos: number;
}

export interface Snapshot {
  size_bytes: number;
  snapshot_id: string;
  source_volume_id: string;
  creation_time: Timestamp;
  ready_to_use: boolean;
}

/** Any request: the call wrapper only reads fields by name. */
export type CsiRequest = Record<string, unknown>;
