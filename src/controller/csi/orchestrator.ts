import { TriremeError } from '../../common/errors';
import type { Logger } from '../../common/logger';

/**
 * What the CSI controller service needs from whatever runs volumes: local child
 * processes in the standalone stack, Kubernetes workloads in a cluster. The CSI
 * layer owns the protocol (validation, rounding, idempotency rules, error codes);
 * an orchestrator owns placement and lifecycle and answers in these terms only.
 */

/** StorageClass parameters after validation (see parameters.ts). */
export interface VolumeParameters {
  readonly replicaCount: number;
  readonly fsType: 'ext4' | 'xfs';
  /** Whether the volume's target requires CHAP from initiators. */
  readonly chap: boolean;
}

export type ContentSource = { readonly kind: 'snapshot'; readonly snapshotId: string } | { readonly kind: 'volume'; readonly volumeId: string };

export type VolumeHealthState = 'healthy' | 'degraded' | 'rebuilding' | 'faulted';

export interface VolumeHealth {
  readonly state: VolumeHealthState;
  /** Operator-facing detail: which replicas are missing, rebuild progress. */
  readonly message: string;
}

export interface OrchestratedVolume {
  readonly volumeId: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly params: VolumeParameters;
  readonly contentSource?: ContentSource;
  /** Where initiators log in: `HOST:PORT`, the target IQN and the LUN. */
  readonly portal: string;
  readonly iqn: string;
  readonly lun: number;
  /** Present when params.chap: handed to nodes as node-stage secrets, never in the volume context. */
  readonly chap?: { readonly user: string; readonly secret: string };
  readonly health: VolumeHealth;
}

export interface OrchestratedSnapshot {
  readonly snapshotId: string;
  readonly name: string;
  readonly sourceVolumeId: string;
  /**
   * The source volume's size when the snapshot was cut: the smallest volume it
   * restores into (Kubernetes shows it as restoreSize), not the bytes it holds.
   */
  readonly sizeBytes: number;
  readonly createdAt: Date;
  readonly readyToUse: boolean;
}

export interface CapacityInfo {
  readonly availableBytes: number;
  readonly maximumVolumeBytes?: number;
  readonly minimumVolumeBytes?: number;
}

export interface Orchestrator {
  /**
   * Whether createVolume accepts a content source (a snapshot or a volume to
   * copy). CLONE_VOLUME is advertised only then; absent means no.
   */
  readonly supportsClones?: boolean;
  /** Creates the volume, or returns the one that already has this name (idempotent by name). */
  createVolume(name: string, sizeBytes: number, params: VolumeParameters, contentSource?: ContentSource): Promise<OrchestratedVolume>;
  findVolumeByName(name: string): Promise<OrchestratedVolume | undefined>;
  getVolume(volumeId: string): Promise<OrchestratedVolume | undefined>;
  /** Throws ERR_VOLUME_NOT_FOUND when there is no such volume, ERR_VOLUME_HAS_SNAPSHOTS when snapshots depend on it. */
  deleteVolume(volumeId: string): Promise<void>;
  /** Grows the volume online; never shrinks. Throws ERR_VOLUME_NOT_FOUND, ERR_INSUFFICIENT_CAPACITY. */
  expandVolume(volumeId: string, sizeBytes: number): Promise<OrchestratedVolume>;
  /** All volumes, in a stable order (by volume id). */
  listVolumes(): Promise<OrchestratedVolume[]>;
  /** Cuts a snapshot of the source, or returns the one that already has this name. */
  createSnapshot(name: string, sourceVolumeId: string): Promise<OrchestratedSnapshot>;
  findSnapshotByName(name: string): Promise<OrchestratedSnapshot | undefined>;
  getSnapshot(snapshotId: string): Promise<OrchestratedSnapshot | undefined>;
  /** Throws ERR_SNAPSHOT_NOT_FOUND when there is no such snapshot. */
  deleteSnapshot(snapshotId: string): Promise<void>;
  /** All snapshots, in a stable order (by snapshot id). */
  listSnapshots(): Promise<OrchestratedSnapshot[]>;
  /** Free space for new volumes with these parameters (replicas multiply the raw cost). */
  capacity(params: VolumeParameters): Promise<CapacityInfo>;
  /** Whether the orchestrator and what it drives answer (CSI Probe). */
  ready(): Promise<boolean>;
}

/** Stable codes an orchestrator throws; the CSI layer maps each to the spec's gRPC code. */
export const ORCHESTRATOR_ERRORS = {
  volumeNotFound: 'ERR_VOLUME_NOT_FOUND',
  snapshotNotFound: 'ERR_SNAPSHOT_NOT_FOUND',
  insufficientCapacity: 'ERR_INSUFFICIENT_CAPACITY',
  volumeHasSnapshots: 'ERR_VOLUME_HAS_SNAPSHOTS',
  unavailable: 'ERR_ORCHESTRATOR_UNAVAILABLE',
} as const;

export class OrchestratorError extends TriremeError {
  constructor(code: (typeof ORCHESTRATOR_ERRORS)[keyof typeof ORCHESTRATOR_ERRORS], message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'OrchestratorError';
  }
}

export type OrchestratorFactory = (options: { logger: Logger; config: Record<string, string> }) => Promise<Orchestrator>;

const factories = new Map<string, OrchestratorFactory>();

/**
 * Orchestrators register themselves by name (`local` for the standalone stack);
 * `trireme csi --orchestrator NAME` picks one. The registry keeps the CSI command
 * free of imports from every orchestrator implementation.
 */
export function registerOrchestrator(name: string, factory: OrchestratorFactory): void {
  factories.set(name, factory);
}

export function orchestratorFactory(name: string): OrchestratorFactory | undefined {
  return factories.get(name);
}

export function registeredOrchestrators(): string[] {
  return [...factories.keys()].sort();
}
