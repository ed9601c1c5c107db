import { setTimeout as sleep } from 'node:timers/promises';
import {
  ORCHESTRATOR_ERRORS,
  OrchestratorError,
  type CapacityInfo,
  type ContentSource,
  type OrchestratedSnapshot,
  type OrchestratedVolume,
  type Orchestrator,
  type VolumeHealth,
  type VolumeParameters,
} from '../../../src/controller/csi';

interface MemoryVolume {
  volume: OrchestratedVolume;
  /** Stands for the volume's data: a clone or a snapshot carries its source's content at that moment. */
  content: string;
}

interface MemorySnapshot {
  snapshot: OrchestratedSnapshot;
  content: string;
}

/**
 * An in-memory orchestrator with the semantics the CSI layer relies on: a pool
 * of raw bytes that replicas consume (size x replicaCount), names that make
 * create idempotent, snapshots that freeze content, clones that copy it, and
 * not-found, in-use and out-of-space failures. It stands in for the standalone
 * stack's local orchestrator (controller + replica processes), which replaces it
 * in these tests when that lands; the CSI layer cannot tell them apart.
 */
export class MemoryOrchestrator implements Orchestrator {
  private readonly volumes = new Map<string, MemoryVolume>();
  private readonly snapshots = new Map<string, MemorySnapshot>();
  private nextId = 1;
  readonly supportsClones = true;
  isReady = true;
  /** Makes create and expand take this long, to hold a volume lock in concurrency tests. */
  delayMs = 0;

  constructor(
    private readonly poolBytes: number,
    private readonly maximumVolumeBytes: number,
  ) {}

  private id(prefix: string): string {
    return `${prefix}-${String(this.nextId++).padStart(6, '0')}`;
  }

  private usedBytes(): number {
    let used = 0;
    for (const { volume } of this.volumes.values()) used += volume.sizeBytes * volume.params.replicaCount;
    return used;
  }

  private reserve(bytes: number, replicaCount: number): void {
    if (this.usedBytes() + bytes * replicaCount > this.poolBytes) {
      throw new OrchestratorError(ORCHESTRATOR_ERRORS.insufficientCapacity, `not enough space for ${bytes} bytes x ${replicaCount} replicas`);
    }
  }

  setHealth(volumeId: string, health: VolumeHealth): void {
    const entry = this.volumes.get(volumeId);
    if (!entry) throw new Error(`no volume ${volumeId}`);
    entry.volume = { ...entry.volume, health };
  }

  write(volumeId: string, content: string): void {
    const entry = this.volumes.get(volumeId);
    if (!entry) throw new Error(`no volume ${volumeId}`);
    entry.content = content;
  }

  content(volumeId: string): string | undefined {
    return this.volumes.get(volumeId)?.content;
  }

  async createVolume(name: string, sizeBytes: number, params: VolumeParameters, contentSource?: ContentSource): Promise<OrchestratedVolume> {
    if (this.delayMs) await sleep(this.delayMs);
    const existing = await this.findVolumeByName(name);
    if (existing) return existing;
    let content = '';
    if (contentSource?.kind === 'snapshot') {
      const snap = this.snapshots.get(contentSource.snapshotId);
      if (!snap) throw new OrchestratorError(ORCHESTRATOR_ERRORS.snapshotNotFound, `snapshot ${contentSource.snapshotId} does not exist`);
      content = snap.content;
    } else if (contentSource?.kind === 'volume') {
      const source = this.volumes.get(contentSource.volumeId);
      if (!source) throw new OrchestratorError(ORCHESTRATOR_ERRORS.volumeNotFound, `volume ${contentSource.volumeId} does not exist`);
      content = source.content;
    }
    this.reserve(sizeBytes, params.replicaCount);
    const volumeId = this.id('vol');
    const volume: OrchestratedVolume = {
      volumeId,
      name,
      sizeBytes,
      params,
      contentSource,
      portal: '127.0.0.1:3260',
      iqn: `iqn.2026-01.io.trireme:${volumeId}`,
      lun: 0,
      chap: params.chap ? { user: volumeId, secret: `secret-of-${volumeId}` } : undefined,
      health: { state: 'healthy', message: `${params.replicaCount} of ${params.replicaCount} replicas in sync` },
    };
    this.volumes.set(volumeId, { volume, content });
    return volume;
  }

  async findVolumeByName(name: string): Promise<OrchestratedVolume | undefined> {
    return [...this.volumes.values()].find((v) => v.volume.name === name)?.volume;
  }

  async getVolume(volumeId: string): Promise<OrchestratedVolume | undefined> {
    return this.volumes.get(volumeId)?.volume;
  }

  async deleteVolume(volumeId: string): Promise<void> {
    if (!this.volumes.has(volumeId)) throw new OrchestratorError(ORCHESTRATOR_ERRORS.volumeNotFound, `volume ${volumeId} does not exist`);
    const dependents = [...this.snapshots.values()].filter((s) => s.snapshot.sourceVolumeId === volumeId);
    if (dependents.length > 0) {
      throw new OrchestratorError(ORCHESTRATOR_ERRORS.volumeHasSnapshots, `volume ${volumeId} still has snapshots ${dependents.map((s) => s.snapshot.snapshotId).join(', ')}`);
    }
    this.volumes.delete(volumeId);
  }

  async expandVolume(volumeId: string, sizeBytes: number): Promise<OrchestratedVolume> {
    if (this.delayMs) await sleep(this.delayMs);
    const entry = this.volumes.get(volumeId);
    if (!entry) throw new OrchestratorError(ORCHESTRATOR_ERRORS.volumeNotFound, `volume ${volumeId} does not exist`);
    if (sizeBytes > entry.volume.sizeBytes) {
      this.reserve(sizeBytes - entry.volume.sizeBytes, entry.volume.params.replicaCount);
      entry.volume = { ...entry.volume, sizeBytes };
    }
    return entry.volume;
  }

  async listVolumes(): Promise<OrchestratedVolume[]> {
    return [...this.volumes.values()].map((v) => v.volume).sort((a, b) => a.volumeId.localeCompare(b.volumeId));
  }

  async createSnapshot(name: string, sourceVolumeId: string): Promise<OrchestratedSnapshot> {
    const existing = await this.findSnapshotByName(name);
    if (existing) return existing;
    const source = this.volumes.get(sourceVolumeId);
    if (!source) throw new OrchestratorError(ORCHESTRATOR_ERRORS.volumeNotFound, `volume ${sourceVolumeId} does not exist`);
    const snapshot: OrchestratedSnapshot = { snapshotId: this.id('snap'), name, sourceVolumeId, sizeBytes: source.volume.sizeBytes, createdAt: new Date(), readyToUse: true };
    this.snapshots.set(snapshot.snapshotId, { snapshot, content: source.content });
    return snapshot;
  }

  async findSnapshotByName(name: string): Promise<OrchestratedSnapshot | undefined> {
    return [...this.snapshots.values()].find((s) => s.snapshot.name === name)?.snapshot;
  }

  async getSnapshot(snapshotId: string): Promise<OrchestratedSnapshot | undefined> {
    return this.snapshots.get(snapshotId)?.snapshot;
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    if (!this.snapshots.delete(snapshotId)) throw new OrchestratorError(ORCHESTRATOR_ERRORS.snapshotNotFound, `snapshot ${snapshotId} does not exist`);
  }

  async listSnapshots(): Promise<OrchestratedSnapshot[]> {
    return [...this.snapshots.values()].map((s) => s.snapshot).sort((a, b) => a.snapshotId.localeCompare(b.snapshotId));
  }

  async capacity(params: VolumeParameters): Promise<CapacityInfo> {
    const free = Math.max(0, this.poolBytes - this.usedBytes());
    const perVolume = Math.floor(free / params.replicaCount / (1024 * 1024)) * 1024 * 1024;
    return { availableBytes: perVolume, maximumVolumeBytes: this.maximumVolumeBytes, minimumVolumeBytes: 1024 * 1024 };
  }

  async ready(): Promise<boolean> {
    return this.isReady;
  }
}
