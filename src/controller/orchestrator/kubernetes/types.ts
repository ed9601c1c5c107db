/** The TriremeVolume resource as the orchestrator reads and writes it (deploy/kustomize/base/crd-triremevolume.yaml). */

export interface ReplicaPlacement {
  readonly index: number;
  /** The node whose hostPath holds this replica's data; the replica never moves off it. */
  readonly node: string;
}

export interface TriremeVolumeSpec {
  readonly csiName: string;
  readonly sizeBytes: number;
  readonly replicaCount: number;
  readonly fsType: 'ext4' | 'xfs';
  readonly chap: boolean;
  readonly iqn: string;
  readonly replicas: ReplicaPlacement[];
  readonly nextReplicaIndex: number;
}

export interface TriremeVolumeStatus {
  readonly state?: 'pending' | 'healthy' | 'degraded' | 'rebuilding' | 'faulted';
  readonly message?: string;
  readonly replicas?: Array<{ index: number; node: string; address: string; mode: string }>;
  readonly rebuild?: { address: string; kind: string; bytesDone: number; bytesTotal: number; percent: number };
  readonly rebuildPercent?: number;
  readonly snapshots?: Array<{ name: string; createdAt: string; sizeBytes: number }>;
  readonly replacements?: number;
  readonly observedGeneration?: number;
  readonly lastReconciled?: string;
}

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  finalizers?: string[];
  labels?: Record<string, string>;
  ownerReferences?: Array<Record<string, unknown>>;
}

export interface TriremeVolume {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: TriremeVolumeSpec;
  status?: TriremeVolumeStatus;
}
