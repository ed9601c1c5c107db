import { LinkErrorCode, ReplicaLinkError, type EpochRun, type ReplicaLink, type ReplicaLinkStatus } from '../../../src/controller/engine/replica-link';
import type { ImageExtent, LogRecord, SnapshotInfo } from '../../../src/replica/store-types';
import { DEFAULT_MAX_PAYLOAD } from '../../../src/replica/wire/protocol';
import { SimReplica } from '../engine/sim/sim-replica';

/**
 * A ReplicaLink straight onto the engine tests' in-memory replica model, on
 * the real clock. The management API tests exercise the real VolumeEngine
 * through it; the controller-process tests (test/cli) use real replica
 * processes over TCP instead. `down` makes the replica refuse like a killed
 * process, for the status and error-path checks.
 */
export class InProcessLink implements ReplicaLink {
  down = false;
  readonly replica: SimReplica;

  constructor(
    readonly id: string,
    size: number,
  ) {
    this.replica = new SimReplica(id, size);
  }

  private exec<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      setImmediate(() => {
        if (this.down) reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'connection refused'));
        else {
          try {
            resolve(fn());
          } catch (err) {
            reject(err);
          }
        }
      }),
    );
  }

  write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void> {
    // The real data path refuses frames above its payload limit; so does this link.
    if (data.length > DEFAULT_MAX_PAYLOAD) return Promise.reject(new ReplicaLinkError(LinkErrorCode.OutOfRange, this.id, `payload of ${data.length} bytes over the frame limit`));
    const copy = Buffer.from(data);
    return this.exec(() => this.replica.write(epoch, seq, offset, copy, fua));
  }
  unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    return this.exec(() => this.replica.unmap(epoch, seq, offset, length));
  }
  flush(epoch: number): Promise<void> {
    return this.exec(() => this.replica.flush(epoch));
  }
  read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    if (length > DEFAULT_MAX_PAYLOAD) return Promise.reject(new ReplicaLinkError(LinkErrorCode.OutOfRange, this.id, `read of ${length} bytes over the frame limit`));
    return this.exec(() => this.replica.read(offset, length, snapshot));
  }
  ping(): Promise<void> {
    return this.exec(() => undefined);
  }
  status(): Promise<ReplicaLinkStatus> {
    return this.exec(() => this.replica.status());
  }
  setEpoch(epoch: number): Promise<void> {
    return this.exec(() => this.replica.setEpoch(epoch));
  }
  truncateAfter(epoch: number, seq: number): Promise<void> {
    return this.exec(() => this.replica.truncateAfter(epoch, seq));
  }
  beginRebuild(epoch: number, base: number): Promise<void> {
    return this.exec(() => this.replica.beginRebuild(epoch, base));
  }
  finishRebuild(epoch: number, upTo: number, runs: readonly EpochRun[]): Promise<void> {
    return this.exec(() => this.replica.finishRebuild(epoch, upTo, runs));
  }
  createSnapshot(epoch: number, name: string, seq: number): Promise<SnapshotInfo> {
    return this.exec(() => this.replica.createSnapshot(epoch, name, seq));
  }
  deleteSnapshot(epoch: number, name: string): Promise<void> {
    return this.exec(() => this.replica.deleteSnapshot(epoch, name));
  }
  listSnapshots(): Promise<SnapshotInfo[]> {
    return this.exec(() => this.replica.listSnapshots());
  }
  revertToSnapshot(epoch: number, name: string, seq: number): Promise<void> {
    return this.exec(() => this.replica.revertToSnapshot(epoch, name, seq));
  }
  private async *stream<T>(fetch: () => T[]): AsyncGenerator<T> {
    for (const item of await this.exec(fetch)) yield item;
  }
  exportRecords(afterSeq: number): AsyncIterable<LogRecord> {
    return this.stream(() => this.replica.exportRecords(afterSeq));
  }
  exportImage(options: { snapshot?: string }): AsyncIterable<ImageExtent> {
    return this.stream(() => this.replica.exportImage(options.snapshot));
  }
  applyRecord(epoch: number, record: LogRecord): Promise<void> {
    return this.exec(() => this.replica.applyRecord(epoch, record));
  }
  applyExtent(epoch: number, extent: ImageExtent): Promise<void> {
    return this.exec(() => this.replica.applyExtent(epoch, extent));
  }
  resize(epoch: number, size: number): Promise<void> {
    return this.exec(() => this.replica.resize(epoch, size));
  }
  async close(): Promise<void> {}
}
