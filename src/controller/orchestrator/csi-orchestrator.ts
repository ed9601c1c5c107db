import { createHash, randomBytes } from 'node:crypto';
import { statfs } from 'node:fs/promises';
import { TriremeError, errorCode } from '../../common/errors';
import {
  OrchestratorError,
  type CapacityInfo,
  type ContentSource,
  type OrchestratedSnapshot,
  type OrchestratedVolume,
  type Orchestrator,
  type VolumeHealthState,
  type VolumeParameters,
} from '../csi/orchestrator';
import type { SnapshotView } from '../management/volume-control';
import { MIN_VOLUME_SIZE, type LocalOrchestrator, type VolumeDescription } from './local-orchestrator';
import { VOLUME_NAME, type VolumeRecord } from './volume-records';

const SNAPSHOT_SEPARATOR = '@';

/**
 * CSI names (`pvc-<uuid>`) are usually valid volume names already and are
 * kept as they are, so `trireme volume ls` shows what Kubernetes shows; any
 * other name is hashed into one.
 */
export function volumeNameFor(csiName: string): string {
  if (VOLUME_NAME.test(csiName) && csiName.length <= 63) return csiName;
  return `csi-${createHash('sha256').update(csiName).digest('hex').slice(0, 32)}`;
}

/**
 * The snapshot a clone of a volume copies, named after the clone (the same on
 * every attempt); 24 hex digits of a hash keep it apart from snapshot names people choose.
 */
export function temporarySnapshotName(volume: string): string {
  return `clone-for-${createHash('sha256').update(volume).digest('hex').slice(0, 24)}`;
}

/** Snapshot names inside a volume: the CSI name when it fits the catalog's rules, else a hash. */
export function snapshotNameFor(csiName: string): string {
  if (/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(csiName)) return csiName;
  return `csi-${createHash('sha256').update(csiName).digest('hex').slice(0, 32)}`;
}

function health(d: VolumeDescription): { state: VolumeHealthState; message: string } {
  const s = d.status;
  if (!s) return { state: 'faulted', message: `controller not answering: ${d.statusError}` };
  const modes = s.replicas.map((r) => `${r.address} ${r.mode}`).join(', ');
  const state: VolumeHealthState = s.state === 'offline' ? 'faulted' : s.state;
  return { state, message: `${s.state}: ${modes}` };
}

/**
 * The CSI controller service's Orchestrator over the standalone stack's local
 * orchestrator: volume ids are volume names, snapshot ids `VOLUME@SNAPSHOT`.
 */
export class CsiLocalOrchestrator implements Orchestrator {
  constructor(private readonly local: LocalOrchestrator) {}

  private toVolume(d: VolumeDescription): OrchestratedVolume {
    const r = d.record;
    return {
      volumeId: r.name,
      name: r.csi?.name ?? r.name,
      sizeBytes: r.sizeBytes,
      params: { replicaCount: r.replicas.length, fsType: r.csi?.fsType ?? 'ext4', chap: r.chap !== undefined },
      ...(r.csi?.source ? { contentSource: r.csi.source } : {}),
      portal: d.portal,
      iqn: r.iqn,
      lun: 0,
      ...(r.chap ? { chap: r.chap } : {}),
      health: health(d),
    };
  }

  private async describe(volumeId: string): Promise<VolumeDescription | undefined> {
    try {
      return await this.local.describe(volumeId);
    } catch (err) {
      if (errorCode(err) === 'ERR_VOLUME_NOT_FOUND') return undefined;
      throw err;
    }
  }

  /** Clones are copied from the source's replicas into the new ones before the new volume serves (clone.ts). */
  readonly supportsClones = true;

  async createVolume(name: string, sizeBytes: number, params: VolumeParameters, contentSource?: ContentSource): Promise<OrchestratedVolume> {
    const existing = await this.findVolumeByName(name);
    if (existing) return existing;
    const size = Math.max(MIN_VOLUME_SIZE, Math.ceil(sizeBytes / 4096) * 4096);
    const chap = params.chap ? { user: `trireme-${randomBytes(4).toString('hex')}`, secret: randomBytes(12).toString('base64url') } : undefined;
    const request = { name: volumeNameFor(name), sizeBytes: size, replicaCount: params.replicaCount, chap, csi: { name, fsType: params.fsType, ...(contentSource ? { source: contentSource } : {}) } };
    if (!contentSource) return this.toVolume(await this.local.createVolume(request));
    if (contentSource.kind === 'snapshot') {
      const snapshot = await this.getSnapshot(contentSource.snapshotId);
      if (!snapshot) throw new OrchestratorError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${contentSource.snapshotId} does not exist`);
      return this.toVolume(await this.local.createVolume({ ...request, clone: { volume: snapshot.sourceVolumeId, snapshot: snapshot.name } }));
    }
    return this.cloneVolume(request, contentSource.volumeId);
  }

  /**
   * A clone of a volume is a clone of its head: a snapshot cut for the copy
   * and deleted after it, whatever the outcome, so it never outlives the call.
   * If this process dies meanwhile, the clone's record names the snapshot and
   * the next start deletes it; its name comes from the clone's, so a retried
   * CreateVolume reuses one cut just before a crash instead of adding another.
   */
  private async cloneVolume(request: Parameters<LocalOrchestrator['createVolume']>[0], sourceId: string): Promise<OrchestratedVolume> {
    if (!(await this.local.getVolume(sourceId))) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${sourceId} does not exist`);
    const temporary = temporarySnapshotName(request.name);
    await this.local.createSnapshot(sourceId, temporary).catch((err: unknown) => {
      if (errorCode(err) !== 'ERR_ALREADY_EXISTS') throw err;
    });
    let made: VolumeDescription;
    try {
      made = await this.local.createVolume({ ...request, clone: { volume: sourceId, snapshot: temporary, temporary: true } });
    } catch (err) {
      // The copy's failure is the answer; a failed clean-up must not hide it.
      await this.local.deleteSnapshot(sourceId, temporary).catch(() => undefined);
      throw err;
    }
    await this.local.deleteSnapshot(sourceId, temporary);
    return this.toVolume(made);
  }

  async findVolumeByName(name: string): Promise<OrchestratedVolume | undefined> {
    const record = await this.local.getVolume(volumeNameFor(name));
    if (!record || (record.csi?.name ?? record.name) !== name) return undefined;
    // A repeated CreateVolume while the copy runs must not report a half-filled clone as made.
    if (record.populating) throw new TriremeError('ERR_UNAVAILABLE', `volume ${record.name} is still being copied from its source`);
    const d = await this.describe(record.name);
    return d && this.toVolume(d);
  }

  async getVolume(volumeId: string): Promise<OrchestratedVolume | undefined> {
    const d = await this.describe(volumeId);
    return d && this.toVolume(d);
  }

  async deleteVolume(volumeId: string): Promise<void> {
    if (!(await this.local.getVolume(volumeId))) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${volumeId} does not exist`);
    const snapshots = await this.local.listSnapshots(volumeId).catch(() => [] as SnapshotView[]);
    if (snapshots.length > 0) throw new OrchestratorError('ERR_VOLUME_HAS_SNAPSHOTS', `volume ${volumeId} still has ${snapshots.length} snapshot(s)`);
    await this.local.deleteVolume(volumeId);
  }

  async expandVolume(volumeId: string, sizeBytes: number): Promise<OrchestratedVolume> {
    if (!(await this.local.getVolume(volumeId))) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${volumeId} does not exist`);
    return this.toVolume(await this.local.expandVolume(volumeId, Math.ceil(sizeBytes / 4096) * 4096));
  }

  async listVolumes(): Promise<OrchestratedVolume[]> {
    const records = (await this.local.listVolumes()).sort((a, b) => a.name.localeCompare(b.name));
    const described = await Promise.all(records.map((r) => this.describe(r.name)));
    return described.filter((d): d is VolumeDescription => d !== undefined).map((d) => this.toVolume(d));
  }

  /**
   * The restore size is the source volume's size: a replica snapshot records
   * the bytes written, not the volume size when it was cut, and volumes never
   * shrink, so the current size always holds the snapshot's image.
   */
  private toSnapshot(record: VolumeRecord, s: SnapshotView): OrchestratedSnapshot {
    return { snapshotId: `${record.name}${SNAPSHOT_SEPARATOR}${s.name}`, name: s.name, sourceVolumeId: record.name, sizeBytes: record.sizeBytes, createdAt: new Date(s.createdAt), readyToUse: true };
  }

  async createSnapshot(name: string, sourceVolumeId: string): Promise<OrchestratedSnapshot> {
    const existing = await this.findSnapshotByName(name);
    if (existing) {
      if (existing.sourceVolumeId !== sourceVolumeId) throw new TriremeError('ERR_ALREADY_EXISTS', `snapshot ${name} exists for volume ${existing.sourceVolumeId}`);
      return existing;
    }
    const record = await this.local.getVolume(sourceVolumeId);
    if (!record) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${sourceVolumeId} does not exist`);
    return this.toSnapshot(record, await this.local.createSnapshot(sourceVolumeId, snapshotNameFor(name)));
  }

  async findSnapshotByName(name: string): Promise<OrchestratedSnapshot | undefined> {
    const wanted = snapshotNameFor(name);
    return (await this.listSnapshots()).find((s) => s.name === wanted);
  }

  async getSnapshot(snapshotId: string): Promise<OrchestratedSnapshot | undefined> {
    return (await this.listSnapshots()).find((s) => s.snapshotId === snapshotId);
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const snapshot = await this.getSnapshot(snapshotId);
    if (!snapshot) throw new OrchestratorError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${snapshotId} does not exist`);
    await this.local.deleteSnapshot(snapshot.sourceVolumeId, snapshot.name);
  }

  async listSnapshots(): Promise<OrchestratedSnapshot[]> {
    const out: OrchestratedSnapshot[] = [];
    for (const record of await this.local.listVolumes()) {
      // A volume whose controller is down has snapshots we cannot see right now; listing the rest beats failing.
      const snapshots = await this.local.listSnapshots(record.name).catch(() => [] as SnapshotView[]);
      out.push(...snapshots.map((s) => this.toSnapshot(record, s)));
    }
    return out.sort((a, b) => a.snapshotId.localeCompare(b.snapshotId));
  }

  /** Free bytes of the data directory's file system, divided among the replicas a volume needs. */
  async capacity(params: VolumeParameters): Promise<CapacityInfo> {
    const fs = await statfs(this.local.dataDir);
    const available = Math.floor((fs.bavail * fs.bsize) / Math.max(1, params.replicaCount));
    return { availableBytes: available, maximumVolumeBytes: available, minimumVolumeBytes: MIN_VOLUME_SIZE };
  }

  async ready(): Promise<boolean> {
    try {
      await this.local.listVolumes();
      return true;
    } catch {
      return false;
    }
  }
}
