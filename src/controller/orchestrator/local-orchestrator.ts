import { rm } from 'node:fs/promises';
import { InvalidArgumentError, TriremeError, errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { ManagementClient } from '../management/management-client';
import type { SnapshotView, VolumeStatusView } from '../management/volume-control';
import { populateClone } from './clone';
import { allocatePort } from './ports';
import type { ChildStatus, SupervisedChild } from './supervisor';
import { VolumeProcesses, replicaDir, volumeDir, waitForPort, type ProcessLayout } from './volume-processes';
import { VolumeRecords, validateVolumeName, VolumeNotFoundError, type VolumeRecord } from './volume-records';

/** First ports tried for each kind (DESIGN.md: iSCSI 3260, replica data 9700). */
export interface PortBases {
  readonly portal: number;
  readonly replica: number;
  readonly management: number;
  readonly metrics: number;
}

export const DEFAULT_PORT_BASES: PortBases = { portal: 3260, replica: 9700, management: 9500, metrics: 9600 };

export const IQN_PREFIX = 'iqn.2026-11.io.trireme:';
export const MIN_VOLUME_SIZE = 1024 * 1024;
/** 1..5 replicas: the engine's supported range; 3 tolerates one failure with quorum 2. */
export const MAX_REPLICAS = 5;
export const DEFAULT_REPLICAS = 3;

export interface VolumeDescription {
  readonly record: VolumeRecord;
  readonly portal: string;
  readonly management: string;
  readonly metrics: string;
  readonly controller: ChildStatus;
  readonly replicas: ReadonlyArray<{ index: number; address: string; dataDir: string; process: ChildStatus }>;
  readonly status: VolumeStatusView | null;
  readonly statusError: string;
}

export interface LocalOrchestratorOptions extends ProcessLayout {
  readonly records: VolumeRecords;
  readonly logger: Logger;
  readonly ports?: Partial<PortBases>;
  /** How long a new volume's controller may take to answer (replicas + epoch + rebuild start). */
  readonly readyTimeoutMs?: number;
}

function validateSize(sizeBytes: unknown): number {
  if (typeof sizeBytes !== 'number' || !Number.isSafeInteger(sizeBytes) || sizeBytes < MIN_VOLUME_SIZE) {
    throw new InvalidArgumentError(`invalid volume size ${String(sizeBytes)}: at least 1 MiB`);
  }
  if (sizeBytes % 4096 !== 0) throw new InvalidArgumentError(`invalid volume size ${sizeBytes}: must be a multiple of 4096 bytes`);
  return sizeBytes;
}

/**
 * The standalone orchestrator: every volume is one `trireme controller` and N
 * `trireme replica` child processes on this machine, supervised and restarted
 * when they die. Records live in LevelDB so a restart of the stack brings the
 * same volumes back on the same ports and data directories.
 */
export class LocalOrchestrator {
  private readonly volumes = new Map<string, VolumeProcesses>();
  private readonly clients = new Map<string, ManagementClient>();
  private readonly locks = new Map<string, Promise<unknown>>();
  private readonly ports: PortBases;
  private readonly readyTimeoutMs: number;
  private closed = false;

  constructor(private readonly options: LocalOrchestratorOptions) {
    this.ports = { ...DEFAULT_PORT_BASES, ...options.ports };
    this.readyTimeoutMs = options.readyTimeoutMs ?? 30_000;
  }

  get dataDir(): string {
    return this.options.dataDir;
  }

  /** Starts the processes of every recorded volume (after a restart of the stack). */
  async start(): Promise<void> {
    const leftovers: Array<{ volume: string; snapshot: string }> = [];
    for (const record of await this.options.records.list()) {
      if (record.populating) {
        this.options.logger.warn({ volume: record.name }, 'clone was cut short by a restart: removing the half-copied volume');
        await this.discard(record);
        if (record.cloneSnapshot) leftovers.push(record.cloneSnapshot);
        continue;
      }
      const processes = this.processesFor(record);
      processes.start(this.readyTimeoutMs).catch((err: unknown) => this.options.logger.error({ err, volume: record.name }, 'volume did not come back'));
    }
    // Once their sources serve again, in the background: the other volumes must not wait for them.
    for (const left of leftovers) {
      this.dropSnapshotWhenUp(left).catch((err: unknown) => this.options.logger.warn({ err, volume: left.volume, snapshot: left.snapshot }, 'could not delete the snapshot of a clone cut short'));
    }
  }

  /** Deletes a snapshot as soon as its volume's controller answers (it may still be starting). */
  private async dropSnapshotWhenUp(target: { volume: string; snapshot: string }): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    for (;;) {
      const record = await this.options.records.get(target.volume);
      if (!record || this.closed) return;
      try {
        await this.client(record).deleteSnapshot(target.snapshot);
        this.options.logger.info({ volume: target.volume, snapshot: target.snapshot }, 'snapshot of a clone cut short deleted');
        return;
      } catch (err) {
        const code = errorCode(err);
        if (code === 'ERR_SNAPSHOT_NOT_FOUND' || code === 'ERR_NOT_FOUND') return;
        if (Date.now() >= deadline) throw err;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  private processesFor(record: VolumeRecord): VolumeProcesses {
    let processes = this.volumes.get(record.name);
    if (!processes) {
      processes = new VolumeProcesses(record, this.options, this.options.logger.child({ volume: record.name }));
      this.volumes.set(record.name, processes);
    }
    return processes;
  }

  /** Serialises changes to one volume; calls on different volumes run in parallel. */
  private withLock<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(name) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(fn);
    this.locks.set(name, next);
    const clear = (): void => {
      if (this.locks.get(name) === next) this.locks.delete(name);
    };
    next.then(clear, clear);
    return next;
  }

  private client(record: VolumeRecord): ManagementClient {
    let client = this.clients.get(record.name);
    if (!client) {
      client = new ManagementClient(this.address(record.managementPort));
      this.clients.set(record.name, client);
    }
    return client;
  }

  private address(port: number): string {
    return this.options.host.includes(':') ? `[${this.options.host}]:${port}` : `${this.options.host}:${port}`;
  }

  private async takenPorts(): Promise<Set<number>> {
    const taken = new Set<number>();
    for (const r of await this.options.records.list()) {
      for (const p of [r.portalPort, r.managementPort, r.metricsPort, ...r.replicas.map((x) => x.port)]) taken.add(p);
    }
    return taken;
  }

  private async allocate(base: number, taken: Set<number>): Promise<number> {
    const port = await allocatePort(this.options.host, base, taken);
    taken.add(port);
    return port;
  }

  /**
   * Creates a volume; with `clone`, its replicas are filled with that snapshot
   * of another volume before its controller first starts (see clone.ts).
   */
  async createVolume(request: {
    name: string;
    sizeBytes: number;
    replicaCount?: number;
    chap?: VolumeRecord['chap'];
    csi?: VolumeRecord['csi'];
    /** `temporary`: the snapshot was cut for this clone; recorded so that a restart mid-copy deletes it. */
    clone?: { volume: string; snapshot: string; temporary?: boolean };
  }): Promise<VolumeDescription> {
    const name = validateVolumeName(request.name);
    const sizeBytes = validateSize(request.sizeBytes);
    const count = request.replicaCount || DEFAULT_REPLICAS;
    if (!Number.isInteger(count) || count < 1 || count > MAX_REPLICAS) throw new InvalidArgumentError(`invalid replica count ${count}: 1 to ${MAX_REPLICAS}`);
    return this.withLock(name, async () => {
      this.assertOpen();
      const existing = await this.options.records.get(name);
      if (existing) throw new TriremeError('ERR_ALREADY_EXISTS', `volume "${name}" already exists (${existing.sizeBytes} bytes)`);
      const source = request.clone ? await this.cloneSource(request.clone, sizeBytes) : undefined;
      const taken = await this.takenPorts();
      const replicas = [];
      for (let index = 0; index < count; index++) replicas.push({ index, port: await this.allocate(this.ports.replica, taken) });
      let record: VolumeRecord = {
        name,
        sizeBytes,
        iqn: IQN_PREFIX + name,
        portalPort: await this.allocate(this.ports.portal, taken),
        managementPort: await this.allocate(this.ports.management, taken),
        metricsPort: await this.allocate(this.ports.metrics, taken),
        replicas,
        nextReplicaIndex: count,
        createdAt: new Date().toISOString(),
        ...(request.chap ? { chap: request.chap } : {}),
        ...(request.csi ? { csi: request.csi } : {}),
        ...(source ? { populating: true } : {}),
        ...(request.clone?.temporary ? { cloneSnapshot: { volume: request.clone.volume, snapshot: request.clone.snapshot } } : {}),
      };
      await this.options.records.put(record);
      this.options.logger.info({ volume: name, sizeBytes, replicas: count, portal: record.portalPort }, 'volume created');
      try {
        const fill = source
          ? async (addresses: string[]): Promise<void> => {
              await populateClone(source, addresses, this.options.logger.child({ volume: name }));
              record = { ...record, populating: false, cloneSnapshot: undefined };
              await this.options.records.put(record);
              this.processesFor(record).update(record);
            }
          : undefined;
        await this.processesFor(record).start(this.readyTimeoutMs, fill);
      } catch (err) {
        // A half-made volume (a clone whose copy failed) is removed whole: nothing refers to it yet.
        await this.discard(record);
        throw err;
      }
      await this.waitReady(record);
      return this.describeRecord(record);
    });
  }

  /** Checks a clone's source snapshot and names the source replicas that hold it (RW ones). */
  private async cloneSource(clone: { volume: string; snapshot: string }, sizeBytes: number): Promise<{ volume: string; snapshot: string; replicas: string[] }> {
    const source = await this.options.records.require(clone.volume);
    const snapshot = (await this.client(source).listSnapshots()).find((s) => s.name === clone.snapshot);
    if (!snapshot) throw new TriremeError('ERR_SNAPSHOT_NOT_FOUND', `volume "${clone.volume}" has no snapshot "${clone.snapshot}"`);
    // A snapshot records the bytes written, not the volume's size then; volumes never shrink, so the current size bounds its image.
    if (sizeBytes < source.sizeBytes) throw new TriremeError('ERR_OUT_OF_RANGE', `a clone of ${clone.volume}@${clone.snapshot} needs at least ${source.sizeBytes} bytes, not ${sizeBytes}`);
    const status = await this.client(source).status(3000);
    return { ...clone, replicas: status.replicas.filter((r) => r.mode === 'RW').map((r) => r.address) };
  }

  private async discard(record: VolumeRecord): Promise<void> {
    await this.volumes.get(record.name)?.stop();
    this.volumes.delete(record.name);
    this.clients.get(record.name)?.close();
    this.clients.delete(record.name);
    await this.options.records.delete(record.name);
    await rm(volumeDir(this.options.dataDir, record.name), { recursive: true, force: true });
  }

  /** Waits until the controller answers its management API. */
  private async waitReady(record: VolumeRecord): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      try {
        await this.client(record).status(2000);
        await waitForPort(this.options.host, record.portalPort, Math.max(1, deadline - Date.now()));
        return;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    throw new TriremeError('ERR_UNAVAILABLE', `volume "${record.name}" did not become ready within ${this.readyTimeoutMs} ms: ${(last as Error)?.message ?? 'no answer'}`);
  }

  async deleteVolume(name: string): Promise<void> {
    return this.withLock(name, async () => {
      const record = await this.options.records.require(name);
      await this.discard(record);
      this.options.logger.info({ volume: record.name }, 'volume deleted');
    });
  }

  async expandVolume(name: string, sizeBytes: number): Promise<VolumeDescription> {
    validateSize(sizeBytes);
    return this.withLock(name, async () => {
      const record = await this.options.records.require(name);
      if (sizeBytes < record.sizeBytes) throw new TriremeError('ERR_OUT_OF_RANGE', `cannot shrink volume "${name}" from ${record.sizeBytes} to ${sizeBytes} bytes`);
      if (sizeBytes > record.sizeBytes) {
        await this.client(record).expand(sizeBytes);
        const updated = { ...record, sizeBytes };
        await this.options.records.put(updated);
        this.volumes.get(name)?.update(updated);
      }
      return this.describe(name);
    });
  }

  async getVolume(name: string): Promise<VolumeRecord | undefined> {
    return this.options.records.get(name);
  }

  async listVolumes(): Promise<VolumeRecord[]> {
    return this.options.records.list();
  }

  async describe(name: string): Promise<VolumeDescription> {
    return this.describeRecord(await this.options.records.require(name));
  }

  private async describeRecord(record: VolumeRecord): Promise<VolumeDescription> {
    const processes = this.volumes.get(record.name);
    const stopped: ChildStatus = { state: 'stopped', pid: 0, restarts: 0, lastExit: '' };
    let status: VolumeStatusView | null = null;
    let statusError = '';
    try {
      status = await this.client(record).status(3000);
    } catch (err) {
      statusError = (err as Error).message;
    }
    return {
      record,
      portal: this.address(record.portalPort),
      management: this.address(record.managementPort),
      metrics: this.address(record.metricsPort),
      controller: processes?.controller.status() ?? stopped,
      replicas: record.replicas.map((r) => ({
        index: r.index,
        address: this.address(r.port),
        dataDir: replicaDir(this.options.dataDir, record.name, r.index),
        process: processes?.replicas.get(r.index)?.status() ?? stopped,
      })),
      status,
      statusError,
    };
  }

  /** The supervised child of a volume, for fault injection in tests and `trireme replica` admin. */
  child(volume: string, which: 'controller' | number): SupervisedChild | undefined {
    const processes = this.volumes.get(volume);
    return which === 'controller' ? processes?.controller : processes?.replicas.get(which);
  }

  async createSnapshot(volume: string, name: string): Promise<SnapshotView> {
    return this.withLock(volume, async () => this.client(await this.options.records.require(volume)).createSnapshot(name));
  }

  async listSnapshots(volume: string): Promise<SnapshotView[]> {
    return this.client(await this.options.records.require(volume)).listSnapshots();
  }

  async deleteSnapshot(volume: string, name: string): Promise<void> {
    return this.withLock(volume, async () => this.client(await this.options.records.require(volume)).deleteSnapshot(name));
  }

  async revertSnapshot(volume: string, name: string): Promise<VolumeDescription> {
    return this.withLock(volume, async () => {
      const record = await this.options.records.require(volume);
      await this.client(record).revertSnapshot(name);
      return this.describeRecord(record);
    });
  }

  /** Starts one more replica process, then asks the controller to add it (it rebuilds to RW). */
  async addReplica(volume: string): Promise<VolumeDescription> {
    return this.withLock(volume, async () => {
      const record = await this.options.records.require(volume);
      if (record.replicas.length >= MAX_REPLICAS) throw new TriremeError('ERR_FAILED_PRECONDITION', `volume "${volume}" already has ${MAX_REPLICAS} replicas`);
      const port = await this.allocate(this.ports.replica, await this.takenPorts());
      const index = record.nextReplicaIndex;
      const updated: VolumeRecord = { ...record, replicas: [...record.replicas, { index, port }], nextReplicaIndex: index + 1 };
      await this.options.records.put(updated);
      const processes = this.processesFor(updated);
      processes.update(updated);
      processes.startReplica(index);
      try {
        await waitForPort(this.options.host, port, this.readyTimeoutMs);
        await this.client(updated).addReplica(this.address(port));
      } catch (err) {
        // The controller kept its old set: so do the record and the processes.
        await this.options.records.put(record);
        processes.update(record);
        await processes.stopReplica(index);
        await rm(replicaDir(this.options.dataDir, volume, index), { recursive: true, force: true });
        throw err;
      }
      return this.describeRecord(updated);
    });
  }

  /** Removes a replica from the controller, stops its process and deletes its data. */
  async removeReplica(volume: string, index: number): Promise<VolumeDescription> {
    return this.withLock(volume, async () => {
      const record = await this.options.records.require(volume);
      const entry = record.replicas.find((r) => r.index === index);
      if (!entry) throw new TriremeError('ERR_REPLICA_NOT_FOUND', `volume "${volume}" has no replica ${index} (it has ${record.replicas.map((r) => r.index).join(', ')})`);
      if (record.replicas.length === 1) throw new TriremeError('ERR_FAILED_PRECONDITION', `cannot remove the last replica of volume "${volume}"`);
      try {
        await this.client(record).removeReplica(this.address(entry.port));
      } catch (err) {
        // A controller that no longer knows the replica (it was already dropped) is fine.
        if (errorCode(err) !== 'ERR_REPLICA_NOT_FOUND' && errorCode(err) !== 'ERR_NOT_FOUND') throw err;
      }
      const updated: VolumeRecord = { ...record, replicas: record.replicas.filter((r) => r.index !== index) };
      await this.options.records.put(updated);
      const processes = this.processesFor(updated);
      processes.update(updated);
      await processes.stopReplica(index);
      await rm(replicaDir(this.options.dataDir, volume, index), { recursive: true, force: true });
      return this.describeRecord(updated);
    });
  }

  private assertOpen(): void {
    if (this.closed) throw new TriremeError('ERR_UNAVAILABLE', 'the orchestrator is shutting down');
  }

  /** Stops every child (controllers first) and forgets the clients; records stay. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.volumes.values()].map((v) => v.stop()));
    this.volumes.clear();
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

export { VolumeNotFoundError };
