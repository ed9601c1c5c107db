import * as grpc from '@grpc/grpc-js';
import { callUnary, loadProto, lookup } from './grpc-support';
import type { SnapshotView, VolumeStatusView } from './volume-control';

let ctor: grpc.ServiceClientConstructor | undefined;

/**
 * Changing the replica set reopens the volume engine, which may wait out its
 * quorum timeout (30 s by default) before it falls back to the old set.
 */
const RECONFIGURE_TIMEOUT_MS = 90_000;

/** A client of one controller's management API (proto/controller.proto). */
export class ManagementClient {
  private readonly client: grpc.Client;

  constructor(
    private readonly address: string,
    private readonly timeoutMs = 10_000,
  ) {
    ctor ??= lookup<grpc.ServiceClientConstructor>(loadProto('controller.proto'), 'trireme.controller.v1.Controller');
    this.client = new ctor(address, grpc.credentials.createInsecure());
  }

  private call<T>(method: string, request: unknown, timeoutMs = this.timeoutMs): Promise<T> {
    return callUnary<T>(this.client, method, request, timeoutMs, `controller at ${this.address}`);
  }

  status(timeoutMs?: number): Promise<VolumeStatusView> {
    return this.call('getStatus', {}, timeoutMs);
  }

  expand(sizeBytes: number): Promise<VolumeStatusView> {
    return this.call('expand', { sizeBytes });
  }

  createSnapshot(name: string): Promise<SnapshotView> {
    return this.call('createSnapshot', { name });
  }

  async listSnapshots(): Promise<SnapshotView[]> {
    return (await this.call<{ snapshots: SnapshotView[] }>('listSnapshots', {})).snapshots;
  }

  async deleteSnapshot(name: string): Promise<void> {
    await this.call('deleteSnapshot', { name });
  }

  revertSnapshot(name: string): Promise<VolumeStatusView> {
    return this.call('revertSnapshot', { name });
  }

  addReplica(address: string): Promise<VolumeStatusView> {
    return this.call('addReplica', { address }, RECONFIGURE_TIMEOUT_MS);
  }

  removeReplica(address: string): Promise<VolumeStatusView> {
    return this.call('removeReplica', { address }, RECONFIGURE_TIMEOUT_MS);
  }

  close(): void {
    this.client.close();
  }
}
