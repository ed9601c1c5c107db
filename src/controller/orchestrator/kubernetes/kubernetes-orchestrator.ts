import { randomBytes } from 'node:crypto';
import { TriremeError, errorCode } from '../../../common/errors';
import type { Logger } from '../../../common/logger';
import {
  OrchestratorError,
  type CapacityInfo,
  type ContentSource,
  type OrchestratedSnapshot,
  type OrchestratedVolume,
  type Orchestrator,
  type VolumeHealthState,
  type VolumeParameters,
} from '../../csi/orchestrator';
import type { SnapshotView } from '../../management/volume-control';
import { createIfAbsent, isNotFound, retryOnConflict, type KubeClient } from './kube-client';
import { chapSecret, type WorkloadSettings } from './manifests';
import { CRD, FINALIZER, IQN_PREFIX, PORTS, chapSecretName, controllerName, isVolumeId, managementAddress, volumeIdFor } from './names';
import { pickNodes } from './placement';
import { clusterCapacity } from './capacity';
import { dropSnapshot, populate, temporarySnapshotName, type PopulationDeps, type ReplicaResolver } from './clone-population';
import { isPopulating, type CloneSpec, type TriremeVolume } from './types';
import { ControlClients, type ControlConnector } from './volume-control-client';
import { ensureWorkloads, finalizeVolume } from './workloads';

const MIN_VOLUME_SIZE = 1024 * 1024;
const SNAPSHOT_SEPARATOR = '@';
const SNAPSHOT_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export interface KubernetesOrchestratorOptions {
  readonly kube: KubeClient;
  readonly settings: WorkloadSettings;
  readonly logger: Logger;
  /** How to reach a volume's management API; gRPC to its Service by default. */
  readonly connect: ControlConnector;
  /** Labels a node must carry to hold replicas (empty: every Ready, schedulable node). */
  readonly nodeSelector?: Record<string, string>;
  /** Bytes each storage node offers Trireme (0: each node's allocatable ephemeral-storage, see capacity.ts). */
  readonly nodeCapacityBytes?: number;
  /** Maps replica addresses (Service names) to ones this process dials; the identity in a cluster. */
  readonly resolveReplica?: ReplicaResolver;
  /** How long a clone waits for its new replicas' pods to answer before CreateVolume gives up (and is retried). */
  readonly cloneReachableTimeoutMs?: number;
}

/**
 * The CSI controller service's Orchestrator on Kubernetes. A volume is a
 * TriremeVolume resource (its spec: size, parameters, replica placement) plus
 * the workloads made from it (workloads.ts); the reconciler keeps the two in
 * line afterwards. Volume ids are the resource names; snapshot ids `VOLUME@NAME`.
 */
export class KubernetesOrchestrator implements Orchestrator {
  private readonly kube: KubeClient;
  private readonly controls: ControlClients;
  private readonly population: PopulationDeps;

  constructor(private readonly options: KubernetesOrchestratorOptions) {
    this.kube = options.kube;
    this.controls = new ControlClients(options.connect);
    this.population = {
      kube: options.kube,
      control: (volumeId) => this.control(volumeId),
      resolve: options.resolveReplica ?? ((address) => address),
      logger: options.logger,
      reachableTimeoutMs: options.cloneReachableTimeoutMs ?? 90_000,
    };
  }

  /** Clones are copied from the source's replicas into the new ones before the new volume's controller starts (clone-population.ts). */
  readonly supportsClones = true;

  control(volumeId: string) {
    return this.controls.get(managementAddress(volumeId, this.kube.namespace));
  }

  private async read(volumeId: string): Promise<TriremeVolume | undefined> {
    if (!isVolumeId(volumeId)) return undefined;
    try {
      return await this.kube.getVolume(volumeId);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw unavailable(err);
    }
  }

  private async toVolume(v: TriremeVolume): Promise<OrchestratedVolume> {
    const id = v.metadata.name;
    let portal = '';
    try {
      // The node plugin logs in from the host network namespace, where cluster DNS does not resolve: give it the ClusterIP.
      portal = `${(await this.kube.readService(controllerName(id))).spec?.clusterIP ?? ''}:${PORTS.portal}`;
    } catch (err) {
      if (!isNotFound(err)) throw unavailable(err);
    }
    let chap: { user: string; secret: string } | undefined;
    if (v.spec.chap) {
      const secret = await this.kube.readSecret(chapSecretName(id)).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(unavailable(err))));
      const data = secret?.data ?? {};
      if (data.user && data.secret) chap = { user: Buffer.from(data.user, 'base64').toString(), secret: Buffer.from(data.secret, 'base64').toString() };
    }
    const s = v.status;
    const state: VolumeHealthState = s?.state === undefined || s.state === 'pending' ? 'degraded' : s.state;
    return {
      volumeId: id,
      name: v.spec.csiName,
      sizeBytes: v.spec.sizeBytes,
      params: { replicaCount: v.spec.replicaCount, fsType: v.spec.fsType, chap: v.spec.chap },
      ...(v.spec.clone ? { contentSource: contentSourceOf(v.spec.clone) } : {}),
      portal,
      iqn: v.spec.iqn,
      lun: 0,
      ...(chap ? { chap } : {}),
      health: { state, message: s?.message ?? 'pending: workloads starting' },
    };
  }

  async createVolume(name: string, sizeBytes: number, params: VolumeParameters, contentSource?: ContentSource): Promise<OrchestratedVolume> {
    const id = volumeIdFor(name);
    const size = Math.max(MIN_VOLUME_SIZE, Math.ceil(sizeBytes / 4096) * 4096);
    // An existing resource is finished rather than returned as is: an earlier attempt may have stopped before its workloads or mid-copy.
    let volume = await this.read(id);
    if (!volume) {
      const clone = contentSource ? await this.cloneSpec(id, contentSource, size) : undefined;
      const [nodes, all] = await Promise.all([this.kube.listNodes(), this.kube.listVolumes()]).catch((err: unknown) => Promise.reject(unavailable(err)));
      const chosen = pickNodes(nodes.items, all.items, params.replicaCount, new Set(), this.options.nodeSelector ?? {});
      if (chosen.length < params.replicaCount) {
        throw new OrchestratorError('ERR_INSUFFICIENT_CAPACITY', `volume ${name} needs ${params.replicaCount} distinct storage nodes, ${chosen.length} are ready and schedulable`);
      }
      const body: TriremeVolume = {
        apiVersion: `${CRD.group}/${CRD.version}`,
        kind: CRD.kind,
        metadata: { name: id, namespace: this.kube.namespace, finalizers: [FINALIZER], labels: { 'app.kubernetes.io/part-of': 'trireme' } },
        spec: {
          csiName: name,
          sizeBytes: size,
          replicaCount: params.replicaCount,
          fsType: params.fsType,
          chap: params.chap,
          iqn: IQN_PREFIX + id,
          replicas: chosen.map((node, index) => ({ index, node })),
          nextReplicaIndex: chosen.length,
          ...(clone ? { clone } : {}),
        },
      };
      // A 409 here is a concurrent or retried create of the same name: carry on with what the server holds.
      await createIfAbsent(() => this.kube.createVolume(body));
      volume = await this.kube.getVolume(id);
    }
    if (volume.metadata.deletionTimestamp) throw new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `volume ${id} is still being deleted`);
    if (volume.spec.csiName !== name) throw new TriremeError('ERR_ALREADY_EXISTS', `volume id ${id} is taken by ${volume.spec.csiName}`);
    if (!sameSource(volume.spec.clone, contentSource)) throw new TriremeError('ERR_ALREADY_EXISTS', `volume ${name} exists with a different content source`);
    const made = volume;
    if (made.spec.chap) await createIfAbsent(() => this.kube.createSecret(chapSecret(made, randomBytes(12).toString('base64url'), this.options.settings)));
    await ensureWorkloads(this.kube, volume, this.options.settings);
    if (isPopulating(volume)) {
      volume = await populate(this.population, volume).catch(async (err: unknown) => {
        // The source is gone: this clone can never be whole, and nothing refers to it yet. Remove it rather than keep its pods.
        if (errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND' || errorCode(err) === 'ERR_VOLUME_NOT_FOUND') await this.abandon(made);
        throw err;
      });
      await ensureWorkloads(this.kube, volume, this.options.settings);
    }
    this.options.logger.info({ volume: id, name, sizeBytes: size, nodes: volume.spec.replicas.map((r) => r.node), source: volume.spec.clone?.sourceId }, 'volume created');
    return this.toVolume(volume);
  }

  private async abandon(volume: TriremeVolume): Promise<void> {
    this.options.logger.warn({ volume: volume.metadata.name, source: volume.spec.clone?.sourceId }, 'clone source gone: removing the unfinished clone');
    await this.kube.deleteVolume(volume.metadata.name).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(unavailable(err))));
    await finalizeVolume(this.kube, volume);
  }

  /**
   * Checks a clone's source (NOT_FOUND when it is missing, OUT_OF_RANGE when the
   * clone would be smaller) and names the snapshot its replicas are filled from.
   */
  private async cloneSpec(id: string, source: ContentSource, sizeBytes: number): Promise<CloneSpec> {
    const sourceId = source.kind === 'snapshot' ? source.snapshotId : source.volumeId;
    const volumeId = source.kind === 'snapshot' ? (sourceId.split(SNAPSHOT_SEPARATOR)[0] ?? '') : sourceId;
    const from = await this.read(volumeId);
    if (!from || from.metadata.deletionTimestamp) {
      throw new OrchestratorError(source.kind === 'snapshot' ? 'ERR_SNAPSHOT_NOT_FOUND' : 'ERR_VOLUME_NOT_FOUND', `source ${source.kind} ${sourceId} does not exist`);
    }
    if (isPopulating(from)) throw new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `source volume ${volumeId} is itself still being copied`);
    // A snapshot records the bytes written, not the volume's size then; volumes never shrink, so the current size bounds its image.
    if (sizeBytes < from.spec.sizeBytes) throw new TriremeError('ERR_OUT_OF_RANGE', `a clone of ${sourceId} needs at least ${from.spec.sizeBytes} bytes, not ${sizeBytes}`);
    if (source.kind === 'volume') return { kind: 'volume', sourceId, volume: volumeId, snapshot: temporarySnapshotName(id) };
    const snapshot = (await this.snapshotsOf(from)).find((s) => `${volumeId}${SNAPSHOT_SEPARATOR}${s.name}` === sourceId);
    if (!snapshot) throw new OrchestratorError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${sourceId} does not exist`);
    return { kind: 'snapshot', sourceId, volume: volumeId, snapshot: snapshot.name };
  }

  async findVolumeByName(name: string): Promise<OrchestratedVolume | undefined> {
    const v = await this.read(volumeIdFor(name));
    // A clone still being copied is not made yet: CreateVolume goes on and finishes (or redoes) the copy.
    return v && v.spec.csiName === name && !v.metadata.deletionTimestamp && !isPopulating(v) ? this.toVolume(v) : undefined;
  }

  async getVolume(volumeId: string): Promise<OrchestratedVolume | undefined> {
    const v = await this.read(volumeId);
    return v && this.toVolume(v);
  }

  async deleteVolume(volumeId: string): Promise<void> {
    const v = await this.read(volumeId);
    if (!v) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${volumeId} does not exist`);
    const snapshots = await this.snapshotsOf(v);
    if (snapshots.length > 0) throw new OrchestratorError('ERR_VOLUME_HAS_SNAPSHOTS', `volume ${volumeId} still has ${snapshots.length} snapshot(s)`);
    try {
      await this.kube.deleteVolume(volumeId);
    } catch (err) {
      if (!isNotFound(err)) throw unavailable(err);
    }
    // The reconciler would finish this from the watch; doing it now makes DeleteVolume return with nothing left running.
    await finalizeVolume(this.kube, v);
    const clone = v.spec.clone;
    if (clone?.kind === 'volume' && isPopulating(v)) {
      // Best effort: the volume is gone either way; a snapshot left behind shows in ListSnapshots and can be deleted there.
      await dropSnapshot(this.control(clone.volume), clone.snapshot).catch((err: unknown) =>
        this.options.logger.warn({ volume: volumeId, source: clone.volume, snapshot: clone.snapshot, err: (err as Error).message }, 'could not delete the snapshot cut for an unfinished clone'),
      );
    }
    this.controls.drop(managementAddress(volumeId, this.kube.namespace));
    this.options.logger.info({ volume: volumeId }, 'volume deleted');
  }

  async expandVolume(volumeId: string, sizeBytes: number): Promise<OrchestratedVolume> {
    const v = await this.read(volumeId);
    if (!v) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${volumeId} does not exist`);
    const size = Math.ceil(sizeBytes / 4096) * 4096;
    if (size <= v.spec.sizeBytes) return this.toVolume(v);
    await this.control(volumeId).expand(size);
    const updated = await retryOnConflict(
      () => this.kube.getVolume(volumeId),
      (current) => (current.spec.sizeBytes >= size ? Promise.resolve(current) : this.kube.replaceVolume({ ...current, spec: { ...current.spec, sizeBytes: size } })),
    );
    if (!updated) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${volumeId} was deleted while growing`);
    await ensureWorkloads(this.kube, updated, this.options.settings);
    return this.toVolume(updated);
  }

  async listVolumes(): Promise<OrchestratedVolume[]> {
    const { items } = await this.kube.listVolumes().catch((err: unknown) => Promise.reject(unavailable(err)));
    const live = items.filter((v) => !v.metadata.deletionTimestamp).sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
    return Promise.all(live.map((v) => this.toVolume(v)));
  }

  private async snapshotsOf(v: TriremeVolume): Promise<SnapshotView[]> {
    try {
      return await this.control(v.metadata.name).listSnapshots();
    } catch {
      // Controller not answering: the last status the reconciler recorded is the best knowledge there is.
      return (v.status?.snapshots ?? []).map((s) => ({ ...s, seq: 0, epoch: 0 }));
    }
  }

  /**
   * The restore size is the source volume's size: a replica snapshot records
   * the bytes written, not the volume size when it was cut, and volumes never
   * shrink, so the current size always holds the snapshot's image.
   */
  private toSnapshot(v: TriremeVolume, s: SnapshotView): OrchestratedSnapshot {
    const volumeId = v.metadata.name;
    return { snapshotId: `${volumeId}${SNAPSHOT_SEPARATOR}${s.name}`, name: s.name, sourceVolumeId: volumeId, sizeBytes: v.spec.sizeBytes, createdAt: new Date(s.createdAt), readyToUse: true };
  }

  async createSnapshot(name: string, sourceVolumeId: string): Promise<OrchestratedSnapshot> {
    const existing = await this.findSnapshotByName(name);
    if (existing) {
      if (existing.sourceVolumeId !== sourceVolumeId) throw new TriremeError('ERR_ALREADY_EXISTS', `snapshot ${name} exists for volume ${existing.sourceVolumeId}`);
      return existing;
    }
    const v = await this.read(sourceVolumeId);
    if (!v) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${sourceVolumeId} does not exist`);
    return this.toSnapshot(v, await this.control(sourceVolumeId).createSnapshot(snapshotNameFor(name)));
  }

  async findSnapshotByName(name: string): Promise<OrchestratedSnapshot | undefined> {
    const wanted = snapshotNameFor(name);
    return (await this.listSnapshots()).find((s) => s.name === wanted);
  }

  async getSnapshot(snapshotId: string): Promise<OrchestratedSnapshot | undefined> {
    const volumeId = snapshotId.split(SNAPSHOT_SEPARATOR)[0] ?? '';
    const v = await this.read(volumeId);
    if (!v) return undefined;
    return (await this.snapshotsOf(v)).map((s) => this.toSnapshot(v, s)).find((s) => s.snapshotId === snapshotId);
  }

  async deleteSnapshot(snapshotId: string): Promise<void> {
    const snapshot = await this.getSnapshot(snapshotId);
    if (!snapshot) throw new OrchestratorError('ERR_SNAPSHOT_NOT_FOUND', `snapshot ${snapshotId} does not exist`);
    await this.control(snapshot.sourceVolumeId).deleteSnapshot(snapshot.name);
  }

  async listSnapshots(): Promise<OrchestratedSnapshot[]> {
    const { items } = await this.kube.listVolumes().catch((err: unknown) => Promise.reject(unavailable(err)));
    const out: OrchestratedSnapshot[] = [];
    for (const v of items) out.push(...(await this.snapshotsOf(v)).map((s) => this.toSnapshot(v, s)));
    return out.sort((a, b) => a.snapshotId.localeCompare(b.snapshotId));
  }

  /** What eligible nodes offer (the configured budget, else their allocatable ephemeral-storage) less what volumes hold, per replica (capacity.ts). */
  async capacity(params: VolumeParameters): Promise<CapacityInfo> {
    const [nodes, volumes] = await Promise.all([this.kube.listNodes(), this.kube.listVolumes()]).catch((err: unknown) => Promise.reject(unavailable(err)));
    const info = clusterCapacity(nodes.items, volumes.items, params.replicaCount, this.options.nodeSelector ?? {}, this.options.nodeCapacityBytes ?? 0);
    return { ...info, minimumVolumeBytes: MIN_VOLUME_SIZE };
  }

  async ready(): Promise<boolean> {
    try {
      await this.kube.listVolumes();
      return true;
    } catch {
      return false;
    }
  }

  close(): void {
    this.controls.closeAll();
  }
}

function contentSourceOf(clone: CloneSpec): ContentSource {
  return clone.kind === 'snapshot' ? { kind: 'snapshot', snapshotId: clone.sourceId } : { kind: 'volume', volumeId: clone.sourceId };
}

/** Whether a retried CreateVolume asks for the same source as the resource records (CSI: else ALREADY_EXISTS). */
function sameSource(clone: CloneSpec | undefined, source: ContentSource | undefined): boolean {
  if (!clone || !source) return clone === undefined && source === undefined;
  return clone.kind === source.kind && clone.sourceId === (source.kind === 'snapshot' ? source.snapshotId : source.volumeId);
}

function snapshotNameFor(csiName: string): string {
  return SNAPSHOT_NAME.test(csiName) ? csiName : `csi-${volumeIdFor(`snapshot:${csiName}`).slice(3)}`;
}

/** Transport failures and 5xx from the API server: the CSI layer answers UNAVAILABLE so the sidecar retries. */
function unavailable(err: unknown): Error {
  if (err instanceof TriremeError) return err;
  return new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `Kubernetes API: ${(err as Error).message?.split('\n')[0] ?? String(err)}`, { cause: err });
}
