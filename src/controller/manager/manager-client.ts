import * as grpc from '@grpc/grpc-js';
import { callUnary } from '../management/grpc-support';
import type { SnapshotView, VolumeStatusView } from '../management/volume-control';
import { managerServiceClient } from './manager-service';

export interface ProcessMessage {
  state: string;
  pid: number;
  restarts: number;
  lastExit: string;
}

/** proto/manager.proto's Volume, as the client receives it. */
export interface VolumeMessage {
  name: string;
  sizeBytes: number;
  replicaCount: number;
  iqn: string;
  portal: string;
  management: string;
  metrics: string;
  createdAt: string;
  controller: ProcessMessage;
  replicas: Array<{ index: number; address: string; dataDir: string; process: ProcessMessage }>;
  status: VolumeStatusView | null;
  statusError: string;
}

/** A client of the manager API; `target` is a gRPC address (`unix:///…/manager.sock`). */
export class ManagerClient {
  private readonly client: grpc.Client;

  constructor(
    private readonly target: string,
    private readonly timeoutMs = 120_000,
  ) {
    const Ctor = managerServiceClient();
    this.client = new Ctor(target, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, request: unknown): Promise<T> {
    return callUnary<T>(this.client, method, request, this.timeoutMs, `the manager at ${this.target}`);
  }

  /** Fails fast with ERR_MANAGER_NOT_RUNNING-style errors instead of waiting out the deadline. */
  waitForReady(timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => this.client.waitForReady(Date.now() + timeoutMs, (err) => (err ? reject(err) : resolve())));
  }

  createVolume(name: string, sizeBytes: number, replicaCount = 0): Promise<VolumeMessage> {
    return this.call('createVolume', { name, sizeBytes, replicaCount });
  }

  async listVolumes(): Promise<VolumeMessage[]> {
    return (await this.call<{ volumes: VolumeMessage[] }>('listVolumes', {})).volumes;
  }

  getVolume(name: string): Promise<VolumeMessage> {
    return this.call('getVolume', { name });
  }

  async deleteVolume(name: string): Promise<void> {
    await this.call('deleteVolume', { name });
  }

  expandVolume(name: string, sizeBytes: number): Promise<VolumeMessage> {
    return this.call('expandVolume', { name, sizeBytes });
  }

  createSnapshot(volume: string, name: string): Promise<SnapshotView> {
    return this.call('createSnapshot', { volume, name });
  }

  async listSnapshots(volume: string): Promise<SnapshotView[]> {
    return (await this.call<{ snapshots: SnapshotView[] }>('listSnapshots', { name: volume })).snapshots;
  }

  async deleteSnapshot(volume: string, name: string): Promise<void> {
    await this.call('deleteSnapshot', { volume, name });
  }

  revertSnapshot(volume: string, name: string): Promise<VolumeMessage> {
    return this.call('revertSnapshot', { volume, name });
  }

  listReplicas(volume: string): Promise<VolumeMessage> {
    return this.call('listReplicas', { name: volume });
  }

  addReplica(volume: string): Promise<VolumeMessage> {
    return this.call('addReplica', { name: volume });
  }

  removeReplica(volume: string, index: number): Promise<VolumeMessage> {
    return this.call('removeReplica', { volume, index });
  }

  close(): void {
    this.client.close();
  }
}
