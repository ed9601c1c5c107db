/** The TriremeVolume resource as the orchestrator reads and writes it (deploy/kustomize/base/crd-triremevolume.yaml). */

export interface ReplicaPlacement {
  readonly index: number;
  /** The node whose hostPath holds this replica's data; the replica never moves off it. */
  readonly node: string;
}

/**
 * What a clone is copied from, recorded when its resource is made, before any
 * copy starts: a CreateVolume retried after a crash finds it and redoes the
 * copy. `kind` and `sourceId` are the CSI content source (snapshot id or volume
 * id); `volume` and `snapshot` name the snapshot the replicas are filled from.
 * For a volume source that snapshot is cut for the clone and deleted once the
 * copy is done or abandoned, so its name is recorded here before it exists.
 */
export interface CloneSpec {
  readonly kind: 'snapshot' | 'volume';
  readonly sourceId: string;
  readonly volume: string;
  readonly snapshot: string;
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
  readonly clone?: CloneSpec;
}

export interface TriremeVolumeStatus {
  /** Populating: a clone's replicas are being filled and no controller runs; Ready once the copy is whole. */
  readonly phase?: 'Populating' | 'Ready';
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

/**
 * A clone whose copy is not known to be whole. The marker is the absence of
 * phase Ready, not a Populating written after the create: the resource and
 * its clone record are one write, so no crash can leave a clone that looks done.
 */
export function isPopulating(volume: TriremeVolume): boolean {
  return volume.spec.clone !== undefined && volume.status?.phase !== 'Ready';
}
