import { errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { ReplicaControlClient } from '../../replica/client/control-client';
import { ReplicaClient, type RequestDone } from '../../replica/client/replica-client';
import { Opcode } from '../../replica/wire/protocol';
import type { ImageExtent, LogRecord, SnapshotInfo } from '../../replica/store-types';
import { LinkErrorCode, ReplicaLinkError, type EpochRun, type LinkErrorCodeValue, type ReplicaLink, type ReplicaLinkStatus } from './replica-link';

export interface NetworkReplicaLinkOptions {
  /** The replica's data address, HOST:PORT; its gRPC control service answers on the same port. */
  readonly address: string;
  readonly logger: Logger;
  /** Per-request timeout of the data connection (the engine applies its own on top). */
  readonly timeoutMs: number;
  /** The volume the replica must serve ('' accepts any). */
  readonly volumeId?: string;
}

/** Replica and client codes to the engine's link codes. */
const CODES: Record<string, LinkErrorCodeValue> = {
  ERR_STALE_EPOCH: LinkErrorCode.StaleEpoch,
  ERR_NOT_FOUND: LinkErrorCode.NotFound,
  ERR_ALREADY_EXISTS: LinkErrorCode.AlreadyExists,
  ERR_OUT_OF_RANGE: LinkErrorCode.OutOfRange,
  ERR_MISALIGNED: LinkErrorCode.OutOfRange,
  ERR_NO_SPACE: LinkErrorCode.NoSpace,
  ERR_CORRUPT: LinkErrorCode.Corrupt,
  ERR_CHECKSUM_MISMATCH: LinkErrorCode.Corrupt,
  ERR_REPLICA_TIMEOUT: LinkErrorCode.Timeout,
  ERR_GRPC_DEADLINE_EXCEEDED: LinkErrorCode.Timeout,
};

interface Batch<T> {
  readonly epoch: number;
  readonly items: T[];
  readonly waiters: Array<{ resolve: () => void; reject: (err: Error) => void }>;
}

/**
 * Gathers the applies issued in one turn of the event loop into one gRPC
 * client stream: a rebuild keeps many in flight, and one stream per record
 * would cost a round trip each.
 */
class ApplyBatcher<T> {
  private batch: Batch<T> | undefined;

  constructor(private readonly send: (epoch: number, items: T[]) => Promise<unknown>) {}

  add(epoch: number, item: T): Promise<void> {
    return new Promise((resolve, reject) => {
      if (!this.batch || this.batch.epoch !== epoch) {
        this.flush();
        const batch: Batch<T> = { epoch, items: [], waiters: [] };
        this.batch = batch;
        setImmediate(() => {
          if (this.batch === batch) this.flush();
        });
      }
      this.batch.items.push(item);
      this.batch.waiters.push({ resolve, reject });
    });
  }

  private flush(): void {
    const batch = this.batch;
    this.batch = undefined;
    if (!batch) return;
    this.send(batch.epoch, batch.items).then(
      () => batch.waiters.forEach((w) => w.resolve()),
      (err: Error) => batch.waiters.forEach((w) => w.reject(err)),
    );
  }
}

/**
 * ReplicaLink over the replica server: data operations on one pipelined TCP
 * connection (ordered, as the engine needs), control operations over gRPC.
 * The replica keeps its epoch runs and rebuild flag itself (persisted in its
 * metadata, surviving compaction and restarts); the link reads them from its
 * status and holds no history of its own.
 */
export class NetworkReplicaLink implements ReplicaLink {
  readonly id: string;
  private readonly control: ReplicaControlClient;
  private readonly logger: Logger;
  private data: Promise<ReplicaClient> | undefined;
  /** The data connection once its handshake is done: writes and reads then skip the promise layers of onData(). */
  private ready: ReplicaClient | undefined;
  /**
   * The data connection broke. Writes, unmaps and flushes then fail instead of
   * opening a new one: a restarted replica must never receive seq 12 after
   * missing 2-11 on the old connection. ping() (which the engine sends before
   * a rebuild, or to an idle replica) opens the next connection.
   */
  private lost = false;
  private epoch = 0;
  private closed = false;
  private readonly records: ApplyBatcher<LogRecord>;
  private readonly extents: ApplyBatcher<ImageExtent>;

  constructor(private readonly options: NetworkReplicaLinkOptions) {
    this.id = options.address;
    this.logger = options.logger.child({ replica: options.address });
    this.control = new ReplicaControlClient(options.address, { deadlineMs: options.timeoutMs });
    this.records = new ApplyBatcher((epoch, items) => this.onControl(() => this.control.applyRecords(epoch, items)));
    this.extents = new ApplyBatcher((epoch, items) => this.onControl(() => this.control.applyExtents(epoch, items)));
  }

  private map(err: unknown): ReplicaLinkError {
    if (err instanceof ReplicaLinkError) return err;
    const code = CODES[errorCode(err) ?? ''] ?? LinkErrorCode.Unreachable;
    return new ReplicaLinkError(code, this.id, err instanceof Error ? err.message : String(err), { cause: err });
  }

  /** The data connection, opened on first use and again after it closed. */
  private client(): Promise<ReplicaClient> {
    if (this.closed) return Promise.reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'link closed'));
    if (!this.data) {
      const sep = this.options.address.lastIndexOf(':');
      const host = this.options.address.slice(0, sep).replace(/^\[|\]$/g, '');
      const port = Number(this.options.address.slice(sep + 1));
      const connecting = ReplicaClient.connect({ host, port, volumeId: this.options.volumeId, requestTimeoutMs: this.options.timeoutMs, connectTimeoutMs: this.options.timeoutMs, logger: this.logger });
      this.data = connecting;
      const forget = (): void => {
        if (this.data !== connecting) return;
        this.data = undefined;
        this.lost = true;
      };
      connecting.then((c) => {
        if (this.data === connecting) this.ready = c;
        c.once('close', () => {
          if (this.ready === c) this.ready = undefined;
          forget();
        });
      }, forget);
    }
    return this.data;
  }

  private async onData<T>(fn: (c: ReplicaClient) => Promise<T>, mutation = true): Promise<T> {
    if (mutation && this.lost) throw new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'data connection lost');
    try {
      return await fn(await this.client());
    } catch (err) {
      throw this.map(err);
    }
  }

  private async onControl<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw this.map(err);
    }
  }

  /**
   * Sends a mutation on the open data connection in the caller's turn, or
   * through onData() while there is none. Writes, unmaps and flushes must all
   * take the same path: one of them waiting a promise step while the next one
   * went straight out would reach the replica out of seq order (a hole in its
   * log if it crashed between the two).
   */
  private mutation(send: (c: ReplicaClient, done: RequestDone) => void): Promise<void> {
    const c = this.ready;
    if (c === undefined || this.lost) return this.onData((client) => new Promise<void>((resolve, reject) => send(client, (err) => (err ? reject(err) : resolve()))));
    return new Promise((resolve, reject) => send(c, (err) => (err ? reject(this.map(err)) : resolve())));
  }

  write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void> {
    return this.mutation((c, done) => c.submitWrite(epoch, seq, offset, data, fua, done));
  }

  unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    return this.mutation((c, done) => c.submit({ opcode: Opcode.Unmap, requestId: 0, epoch, seq, offset, length }, undefined, done));
  }

  flush(epoch: number): Promise<void> {
    return this.mutation((c, done) => c.submit({ opcode: Opcode.Flush, requestId: 0, epoch }, undefined, done));
  }

  read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    const c = this.ready;
    if (c === undefined) return this.onData((client) => client.read(this.epoch, offset, length, snapshot), false);
    return new Promise((resolve, reject) => c.submitRead(this.epoch, offset, length, snapshot, (err, data) => (err ? reject(this.map(err)) : resolve(data as Buffer))));
  }

  async ping(): Promise<void> {
    await this.onData((c) => c.ping(), false);
    this.lost = false;
  }

  async status(): Promise<ReplicaLinkStatus> {
    const info = await this.onControl(() => this.control.status());
    this.epoch = Math.max(this.epoch, info.epoch);
    return {
      replicaId: info.replicaId,
      epoch: info.epoch,
      lastSeq: info.lastSeq,
      durableSeq: info.durableSeq,
      size: info.size,
      state: info.state,
      runs: info.runs,
      rebuildBase: info.rebuildBase,
    };
  }

  /** The replica itself refuses an epoch not above its own, in one step: a rival claiming the same number loses. */
  async setEpoch(epoch: number): Promise<void> {
    await this.onControl(() => this.control.setEpoch(epoch));
    this.epoch = epoch;
  }

  /** Back to seq 0 is a reset, which needs no history (a revert or a compaction cannot block a full rebuild). */
  async truncateAfter(epoch: number, seq: number): Promise<void> {
    if (seq === 0) await this.onControl(() => this.control.reset(epoch));
    else await this.onControl(() => this.control.truncateAfter(seq, epoch));
  }

  async beginRebuild(epoch: number, base: number): Promise<void> {
    await this.onControl(() => this.control.beginRebuild(base, epoch));
  }

  async finishRebuild(epoch: number, upTo: number, runs: readonly EpochRun[]): Promise<void> {
    await this.onControl(() => this.control.finishRebuild(upTo, epoch, runs));
  }

  createSnapshot(epoch: number, name: string, seq: number): Promise<SnapshotInfo> {
    return this.onControl(() => this.control.createSnapshot(name, epoch, seq));
  }

  deleteSnapshot(epoch: number, name: string): Promise<void> {
    return this.onControl(() => this.control.deleteSnapshot(name, epoch));
  }

  listSnapshots(): Promise<SnapshotInfo[]> {
    return this.onControl(() => this.control.listSnapshots());
  }

  async revertToSnapshot(epoch: number, name: string, seq: number): Promise<void> {
    await this.onControl(() => this.control.revertSnapshot(name, epoch, seq));
  }

  private async *mapped<T>(source: AsyncIterable<T>): AsyncGenerator<T> {
    try {
      yield* source;
    } catch (err) {
      throw this.map(err);
    }
  }

  exportRecords(afterSeq: number): AsyncIterable<LogRecord> {
    return this.mapped(this.control.exportRecords(afterSeq));
  }

  exportImage(options: { snapshot?: string }): AsyncIterable<ImageExtent> {
    return this.mapped(this.control.exportImage(options));
  }

  async applyRecord(epoch: number, record: LogRecord): Promise<void> {
    await this.records.add(epoch, record);
  }

  async applyExtent(epoch: number, extent: ImageExtent): Promise<void> {
    await this.extents.add(epoch, extent);
  }

  async resize(epoch: number, size: number): Promise<void> {
    await this.onControl(() => this.control.resize(size, epoch));
  }

  async close(): Promise<void> {
    this.closed = true;
    const data = this.data;
    this.data = undefined;
    this.ready = undefined;
    const client = await data?.catch(() => undefined);
    client?.close();
    this.control.close();
  }
}
