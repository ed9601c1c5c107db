import * as grpc from '@grpc/grpc-js';
import { TriremeError } from '../../common/errors';
import type { EpochRun, ImageExtent, LogRecord, ReplicaInfo, SnapshotInfo } from '../store-types';
import {
  CONTROL_KEEPALIVE,
  ERROR_CODE_KEY,
  MAX_CONTROL_MESSAGE,
  controlService,
  extentFromMessage,
  extentToMessage,
  recordFromMessage,
  recordToMessage,
  snapshotFromMessage,
  statusFromMessage,
  type ImageExtentMessage,
  type LogRecordMessage,
  type ReplicaStatusMessage,
} from '../wire/control-proto';

/** A failed control call: `code` is the replica's stable code (ERR_STALE_EPOCH, ...) or ERR_GRPC_<STATUS>. */
export class ReplicaControlError extends TriremeError {
  constructor(
    code: string,
    message: string,
    readonly grpcCode: grpc.status,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
    this.name = 'ReplicaControlError';
  }
}

function fromGrpc(err: unknown): ReplicaControlError {
  const e = err as grpc.ServiceError;
  const fromTrailer = e?.metadata?.get(ERROR_CODE_KEY)?.[0];
  const code = typeof fromTrailer === 'string' ? fromTrailer : `ERR_GRPC_${grpc.status[e?.code] ?? 'UNKNOWN'}`;
  return new ReplicaControlError(code, e?.details || e?.message || 'control call failed', e?.code ?? grpc.status.UNKNOWN, { cause: err });
}

type Callback<T> = (err: grpc.ServiceError | null, value?: T) => void;
type RawClient = grpc.Client & Record<string, (...args: unknown[]) => unknown>;

/**
 * Promise-based client of a replica's gRPC control service (proto/replica.proto).
 * Export streams are async iterables (pulling one message at a time, so gRPC
 * flow control paces the source); apply streams take async iterables and honour
 * write() backpressure. Every failure is a ReplicaControlError with a stable code.
 */
export class ReplicaControlClient {
  private readonly raw: RawClient;
  private readonly deadlineMs: number;

  constructor(address: string, options: { deadlineMs?: number; keepaliveTimeMs?: number; keepaliveTimeoutMs?: number } = {}) {
    const Ctor = controlService();
    this.raw = new Ctor(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE,
      'grpc.max_send_message_length': MAX_CONTROL_MESSAGE,
      'grpc.keepalive_time_ms': options.keepaliveTimeMs ?? CONTROL_KEEPALIVE['grpc.keepalive_time_ms'],
      'grpc.keepalive_timeout_ms': options.keepaliveTimeoutMs ?? CONTROL_KEEPALIVE['grpc.keepalive_timeout_ms'],
    }) as unknown as RawClient;
    this.deadlineMs = options.deadlineMs ?? 30_000;
  }

  private unary<T>(method: string, request: object): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const cb: Callback<T> = (err, value) => (err ? reject(fromGrpc(err)) : resolve(value as T));
      this.raw[method](request, { deadline: Date.now() + this.deadlineMs }, cb);
    });
  }

  async status(): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('Status', {}));
  }

  async setEpoch(epoch: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('SetEpoch', { epoch }));
  }

  async createSnapshot(name: string, epoch: number, seq: number): Promise<SnapshotInfo> {
    return snapshotFromMessage(await this.unary<SnapshotInfo>('CreateSnapshot', { name, epoch, seq }));
  }

  async deleteSnapshot(name: string, epoch: number): Promise<void> {
    await this.unary('DeleteSnapshot', { name, epoch });
  }

  async listSnapshots(): Promise<SnapshotInfo[]> {
    return (await this.unary<{ snapshots: SnapshotInfo[] }>('ListSnapshots', {})).snapshots.map(snapshotFromMessage);
  }

  async revertSnapshot(name: string, epoch: number, seq: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('RevertSnapshot', { name, epoch, seq }));
  }

  async resize(size: number, epoch: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('Resize', { size, epoch }));
  }

  async truncateAfter(seq: number, epoch: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('TruncateAfter', { seq, epoch }));
  }

  /** Empties the replica (full rebuild target); works after a revert or a compaction too. */
  async reset(epoch: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('Reset', { epoch }));
  }

  async beginRebuild(base: number, epoch: number): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('BeginRebuild', { base, epoch }));
  }

  async finishRebuild(upTo: number, epoch: number, runs: readonly EpochRun[]): Promise<ReplicaInfo> {
    return statusFromMessage(await this.unary<ReplicaStatusMessage>('FinishRebuild', { upTo, epoch, runs: runs.map((r) => ({ epoch: r.epoch, from: r.from, to: r.to })) }));
  }

  async compact(minDeadRatio?: number): Promise<{ segmentsFreed: number; bytesFreed: number }> {
    return this.unary('Compact', { minDeadRatio: minDeadRatio ?? 0 });
  }

  /** Records after `afterSeq` (delta rebuild source); ERR_NOT_FOUND when compaction dropped some. */
  exportRecords(afterSeq: number): AsyncIterable<LogRecord> {
    return this.serverStream('ExportRecords', { afterSeq }, (m: LogRecordMessage) => recordFromMessage(m));
  }

  /** The image of the head or a snapshot, or only what differs from `base` (full rebuild source). */
  exportImage(options: { snapshot?: string; base?: string } = {}): AsyncIterable<ImageExtent> {
    return this.serverStream('ExportImage', { snapshot: options.snapshot ?? '', base: options.base ?? '' }, (m: ImageExtentMessage) => extentFromMessage(m));
  }

  /** Rebuild target side; `epoch` is the rebuilding controller's (fencing). */
  applyRecords(epoch: number, records: AsyncIterable<LogRecord> | Iterable<LogRecord>): Promise<{ count: number; bytes: number; status: ReplicaInfo }> {
    return this.clientStream('ApplyRecords', records, (r) => ({ ...recordToMessage(r), fenceEpoch: epoch }));
  }

  applyExtents(epoch: number, extents: AsyncIterable<ImageExtent> | Iterable<ImageExtent>): Promise<{ count: number; bytes: number; status: ReplicaInfo }> {
    return this.clientStream('ApplyExtents', extents, (e) => ({ ...extentToMessage(e), fenceEpoch: epoch }));
  }

  close(): void {
    this.raw.close();
  }

  private async *serverStream<M, T>(method: string, request: object, decode: (m: M) => T): AsyncIterable<T> {
    const call = this.raw[method](request) as grpc.ClientReadableStream<M>;
    try {
      for await (const message of call) yield decode(message as M);
    } catch (err) {
      throw err instanceof TriremeError ? err : fromGrpc(err);
    } finally {
      call.cancel();
    }
  }

  private clientStream<T>(method: string, items: AsyncIterable<T> | Iterable<T>, encode: (item: T) => object): Promise<{ count: number; bytes: number; status: ReplicaInfo }> {
    return new Promise((resolve, reject) => {
      let finished = false;
      let onFinish = (): void => undefined;
      const finishedEarly = new Promise<void>((r) => (onFinish = r));
      const call = this.raw[method]((err: grpc.ServiceError | null, res?: { count: number; bytes: number; status: ReplicaStatusMessage }) => {
        finished = true;
        onFinish();
        if (err || !res) reject(fromGrpc(err));
        else resolve({ count: res.count, bytes: res.bytes, status: statusFromMessage(res.status) });
      }) as grpc.ClientWritableStream<object>;
      (async () => {
        for await (const item of items) {
          if (finished) return; // the replica already answered (an error): stop producing
          if (!call.write(encode(item))) await Promise.race([new Promise<void>((r) => call.once('drain', r)), finishedEarly]);
        }
        call.end();
      })().catch((err: unknown) => {
        call.cancel();
        reject(err);
      });
    });
  }
}
