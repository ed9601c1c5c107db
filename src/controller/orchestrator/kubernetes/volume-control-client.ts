import { ManagementClient } from '../../management/management-client';
import type { SnapshotView, VolumeStatusView } from '../../management/volume-control';

/** The management calls the Kubernetes orchestrator makes on a volume's controller (proto/controller.proto). */
export interface VolumeControlClient {
  status(timeoutMs?: number): Promise<VolumeStatusView>;
  expand(sizeBytes: number): Promise<unknown>;
  createSnapshot(name: string): Promise<SnapshotView>;
  listSnapshots(): Promise<SnapshotView[]>;
  deleteSnapshot(name: string): Promise<void>;
  addReplica(address: string): Promise<unknown>;
  removeReplica(address: string): Promise<unknown>;
  close(): void;
}

export type ControlConnector = (address: string) => VolumeControlClient;

/** In a cluster: gRPC to the controller's Service (`<volume>-ctl.<namespace>.svc:9500`). */
export const grpcConnector: ControlConnector = (address) => new ManagementClient(address);

/** One client per address, reused across calls and closed together. */
export class ControlClients {
  private readonly clients = new Map<string, VolumeControlClient>();

  constructor(private readonly connect: ControlConnector) {}

  get(address: string): VolumeControlClient {
    let client = this.clients.get(address);
    if (!client) {
      client = this.connect(address);
      this.clients.set(address, client);
    }
    return client;
  }

  drop(address: string): void {
    this.clients.get(address)?.close();
    this.clients.delete(address);
  }

  closeAll(): void {
    for (const c of this.clients.values()) c.close();
    this.clients.clear();
  }
}
