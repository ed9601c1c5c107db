import type { EpochRun, ReplicaLink, ReplicaLinkStatus } from '../../../../src/controller/engine/replica-link';
import type { ImageExtent, LogRecord, SnapshotInfo } from '../../../../src/replica/store-types';
import type { SimReplica } from './sim-replica';

/**
 * A ReplicaLink onto the in-memory replica model. The control calls forward to
 * the model the same way for every link; a subclass decides how a call travels
 * (`exec`: virtual clock with faults, or the real event loop) and how exports
 * stream, and adds what its data path checks (`write`, `unmap`, `flush`,
 * `read`, `ping`).
 */
export abstract class ReplicaModelLink implements ReplicaLink {
  abstract readonly id: string;
  abstract readonly replica: SimReplica;

  protected abstract exec<T>(fn: () => T): Promise<T>;
  protected abstract stream<T>(fetch: () => T[]): AsyncIterable<T>;

  abstract write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void>;
  abstract unmap(epoch: number, seq: number, offset: number, length: number): Promise<void>;
  abstract flush(epoch: number): Promise<void>;
  abstract read(offset: number, length: number, snapshot?: string): Promise<Buffer>;
  abstract ping(): Promise<void>;
  abstract close(): Promise<void>;

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
}
