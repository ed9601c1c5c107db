import { EventEmitter } from 'node:events';
import { crc32c } from '@node-rs/crc32';
import { connect, type Socket, type TcpNetConnectOpts } from 'node:net';
import { errorCode } from '../../common/errors';
import { silentLogger, type Logger } from '../../common/logger';
import { encodeHeader, payloadCrcMatches, type FrameFields } from '../wire/frame-codec';
import { DEFAULT_MAX_PAYLOAD, FLAG_FUA, FLAG_RESPONSE, Opcode, Status, type Frame, type OpcodeValue, type ReplicaHello } from '../wire/protocol';
import { ClientErrorCode, ReplicaClientError } from './client-errors';
import { FrameReader } from './frame-reader';

export interface ReplicaClientOptions {
  readonly host: string;
  readonly port: number;
  /** The volume this client expects; the replica refuses the hello if it serves another. '' accepts any. */
  readonly volumeId?: string;
  readonly connectTimeoutMs?: number;
  /** A request unanswered for this long means the replica is stuck: the connection is failed. */
  readonly requestTimeoutMs?: number;
  /** A ping is sent after this long without any frame from the replica. */
  readonly keepAliveMs?: number;
  readonly maxPayload?: number;
  readonly logger?: Logger;
}

export interface PingResult {
  readonly epoch: number;
  readonly lastSeq: number;
  readonly durableSeq: number;
}

/** How a request ends: a transport or status error, or the reply frame (status Ok). */
export type RequestDone = (err: ReplicaClientError | undefined, reply?: Frame) => void;

interface Pending {
  readonly opcode: OpcodeValue;
  readonly deadline: number;
  readonly done: RequestDone;
}

const MAX_REQUEST_ID = 0xffffffff;

/**
 * Bytes the socket buffers before write() asks for a pause. Node's default
 * (16 KiB) held back all but the first four 4 KiB writes of a batch, or all
 * but the first 1 MiB write, until a later turn of the event loop; requests
 * that wait sit in memory just the same, so a larger mark costs nothing more.
 */
const SEND_HIGH_WATER_MARK = 1024 * 1024;

/**
 * Payload CRCs of the write buffers sent in this turn of the event loop. The
 * engine sends one buffer to every replica in the same turn, so its CRC32C is
 * computed once rather than once per replica (it was about a tenth of the
 * controller's CPU time on 1 MiB writes). The cache is emptied at the end of
 * the turn, so a caller that later refills the same Buffer gets a fresh CRC.
 */
const writeCrcs = new Map<Buffer, number>();

function writeCrc(data: Buffer): number {
  let crc = writeCrcs.get(data);
  if (crc === undefined) {
    crc = crc32c(data);
    if (writeCrcs.size === 0) setImmediate(() => writeCrcs.clear());
    writeCrcs.set(data, crc);
  }
  return crc;
}

// Deadlines use the monotonic clock: a wall-clock step must not time out (or immortalise) requests.
const { performance } = globalThis;

/**
 * The data-path client of one replica connection. Requests are pipelined and
 * matched to replies by request id through one map of pending requests. One
 * sweeping timer (not one per request) enforces the request timeout and sends
 * keep-alive pings; because every request gets the same timeout, the map's
 * insertion order is deadline order and the sweep looks at its first entry only.
 * A timeout, a protocol fault or a disconnect fails every pending request with
 * a stable code and closes the connection: the caller (the volume engine)
 * decides what a lost replica means. Emits 'close' (with the error that closed
 * the connection, if any) once; emits 'error' too when someone listens for it.
 *
 * The data path runs on callbacks inside (submit, submitRead): the engine
 * sends every write to every replica, and an async function per layer cost
 * several promises per replica request. The promise methods wrap them.
 */
export class ReplicaClient extends EventEmitter {
  private readonly pending = new Map<number, Pending>();
  private readonly timer: NodeJS.Timeout;
  private readonly log: Logger;
  private nextId = 1;
  private lastHeard = performance.now();
  private pingOutstanding = false;
  /** Header and payload buffers waiting for 'drain', in request order; undefined while the socket takes writes. */
  private blocked: Buffer[] | undefined;
  private corked = false;
  private closedWith: ReplicaClientError | undefined;
  hello!: ReplicaHello;

  private constructor(
    private readonly socket: Socket,
    reader: FrameReader,
    private readonly requestTimeoutMs: number,
    private readonly keepAliveMs: number,
    logger: Logger,
  ) {
    super();
    this.log = logger;
    socket.setNoDelay(true);
    reader.attach({
      frame: (frame) => this.onFrame(frame),
      fault: (err) => this.fail(this.protocolFault((err as Error).message, errorCode(err))),
      heard: () => (this.lastHeard = performance.now()),
    });
    socket.on('error', (err) => this.fail(new ReplicaClientError(ClientErrorCode.Disconnected, `replica connection error: ${err.message}`, { cause: err })));
    socket.on('close', () => this.fail(new ReplicaClientError(ClientErrorCode.Disconnected, 'replica connection closed')));
    socket.on('drain', () => this.unblock());
    const sweepMs = Math.max(10, Math.min(requestTimeoutMs, keepAliveMs) / 4);
    this.timer = setInterval(() => this.sweep(), sweepMs);
    this.timer.unref();
  }

  /** Connects, then performs the hello handshake; fails with ERR_REPLICA_CONNECT(_TIMEOUT) or the replica's status code. */
  static async connect(options: ReplicaClientOptions): Promise<ReplicaClient> {
    const logger = (options.logger ?? silentLogger()).child({ replicaAddress: `${options.host}:${options.port}` });
    const timeoutMs = options.connectTimeoutMs ?? 5000;
    const deadline = performance.now() + timeoutMs;
    const reader = new FrameReader(options.maxPayload ?? DEFAULT_MAX_PAYLOAD);
    const socket = await new Promise<Socket>((resolve, reject) => {
      // net.Socket passes its options on to stream.Duplex, which takes writableHighWaterMark (@types/node leaves it out).
      const socketOptions: TcpNetConnectOpts & { writableHighWaterMark: number } = { host: options.host, port: options.port, onread: reader.onread, writableHighWaterMark: SEND_HIGH_WATER_MARK };
      const s = connect(socketOptions);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new ReplicaClientError(ClientErrorCode.ConnectTimeout, `connect to ${options.host}:${options.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (err) => {
        clearTimeout(timer);
        reject(new ReplicaClientError(ClientErrorCode.ConnectFailed, `connect to ${options.host}:${options.port} failed: ${err.message}`, { cause: err }));
      });
    });
    const client = new ReplicaClient(socket, reader, options.requestTimeoutMs ?? 10_000, options.keepAliveMs ?? 2_000, logger);
    // The connect timeout covers the handshake too: a peer that accepts but never greets is not a replica.
    const helloTimer = setTimeout(
      () => client.fail(new ReplicaClientError(ClientErrorCode.ConnectTimeout, `no hello from ${options.host}:${options.port} within ${timeoutMs} ms`)),
      Math.max(0, deadline - performance.now()),
    );
    try {
      const reply = await client.request({ opcode: Opcode.Hello, requestId: 0 }, Buffer.from(options.volumeId ?? '', 'utf8'));
      client.hello = JSON.parse(reply.payload.toString('utf8')) as ReplicaHello;
    } catch (err) {
      client.close();
      throw err;
    } finally {
      clearTimeout(helloTimer);
    }
    return client;
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  async write(epoch: number, seq: number, offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    await this.request(writeFields(epoch, seq, offset, data, options.fua ?? false), data);
  }

  /** Reads the head, or the named snapshot. */
  read(epoch: number, offset: number, length: number, snapshot?: string): Promise<Buffer> {
    return new Promise((resolve, reject) => this.submitRead(epoch, offset, length, snapshot, (err, data) => (err ? reject(err) : resolve(data as Buffer))));
  }

  async unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    await this.request({ opcode: Opcode.Unmap, requestId: 0, epoch, seq, offset, length });
  }

  async flush(epoch: number): Promise<void> {
    await this.request({ opcode: Opcode.Flush, requestId: 0, epoch });
  }

  async ping(): Promise<PingResult> {
    const reply = await this.request({ opcode: Opcode.Ping, requestId: 0 });
    return { epoch: reply.epoch, lastSeq: reply.seq, durableSeq: reply.offset };
  }

  /** Closes the connection; pending requests fail with ERR_REPLICA_CLIENT_CLOSED. */
  close(): void {
    this.fail(new ReplicaClientError(ClientErrorCode.Closed, 'replica client closed'));
  }

  /** The callback form of write(): `done` gets the error, if any (it may run before submitWrite returns). */
  submitWrite(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean, done: RequestDone): void {
    this.submit(writeFields(epoch, seq, offset, data, fua), data, done);
  }

  /** The callback form of read(): a reply of the wrong length is a protocol fault that closes the connection. */
  submitRead(epoch: number, offset: number, length: number, snapshot: string | undefined, done: (err: ReplicaClientError | undefined, data?: Buffer) => void): void {
    this.submit({ opcode: Opcode.Read, requestId: 0, epoch, offset, length }, snapshot ? Buffer.from(snapshot, 'utf8') : undefined, (err, reply) => {
      if (err || !reply) {
        done(err);
      } else if (reply.payload.length !== length) {
        const fault = this.protocolFault(`read of ${length} bytes answered with ${reply.payload.length}`);
        this.fail(fault);
        done(fault);
      } else {
        done(undefined, reply.payload);
      }
    });
  }

  /**
   * Sends one request; `done` runs once with the reply (status Ok) or the
   * error (a status other than Ok, a timeout, a lost connection). `fields.requestId`
   * is ignored: the client numbers requests itself.
   */
  submit(fields: FrameFields, payload: Buffer | undefined, done: RequestDone): void {
    if (this.closedWith) {
      done(this.closedWith);
      return;
    }
    // The replica closes a connection that sends an oversized frame: refuse it here, losing nothing.
    const limit = this.hello?.maxPayload ?? Infinity;
    if ((payload?.length ?? 0) > limit || (fields.opcode === Opcode.Read && (fields.length ?? 0) > limit)) {
      done(new ReplicaClientError('ERR_BAD_REQUEST', `request of ${Math.max(payload?.length ?? 0, fields.length ?? 0)} bytes exceeds the replica's frame limit of ${limit}`));
      return;
    }
    const requestId = this.allocateId();
    const header = encodeHeader(fields, payload, requestId);
    this.pending.set(requestId, { opcode: fields.opcode, deadline: performance.now() + this.requestTimeoutMs, done });
    // Backpressure: while the socket's buffer is full, requests queue (in order) until 'drain'.
    if (this.blocked) {
      this.blocked.push(header);
      if (payload && payload.length > 0) this.blocked.push(payload);
      return;
    }
    this.transmit(header, payload);
  }

  private request(fields: FrameFields, payload?: Buffer): Promise<Frame> {
    return new Promise((resolve, reject) => this.submit(fields, payload, (err, reply) => (err ? reject(err) : resolve(reply as Frame))));
  }

  /**
   * Requests issued in the same turn of the event loop leave in one writev
   * (header and payload uncopied). Uncorking in the check phase, not on the
   * next tick, batches the requests of every initiator socket read in this
   * poll phase: one send per replica instead of one per SCSI command (sends
   * on loopback are a large share of the controller's CPU time at depth).
   */
  private transmit(header: Buffer, payload: Buffer | undefined): void {
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => {
        this.corked = false;
        this.socket.uncork();
      });
    }
    let ok = this.socket.write(header);
    if (payload && payload.length > 0) ok = this.socket.write(payload) && ok;
    if (!ok) this.blocked = [];
  }

  private unblock(): void {
    const queued = this.blocked;
    this.blocked = undefined;
    if (!queued || this.closedWith) return;
    for (let i = 0; i < queued.length; i++) {
      this.transmit(queued[i], undefined);
      const full = this.blocked as Buffer[] | undefined;
      if (full !== undefined) {
        // Full again: the rest waits for the next 'drain', still in order.
        for (let j = i + 1; j < queued.length; j++) full.push(queued[j]);
        return;
      }
    }
  }

  private allocateId(): number {
    for (;;) {
      const id = this.nextId;
      this.nextId = id === MAX_REQUEST_ID ? 1 : id + 1;
      if (!this.pending.has(id)) return id;
    }
  }

  private onFrame(frame: Frame): void {
    if (this.closedWith) return;
    const entry = this.pending.get(frame.requestId);
    if ((frame.flags & FLAG_RESPONSE) === 0 || entry === undefined || entry.opcode !== frame.opcode) {
      this.fail(this.protocolFault(`unexpected frame (opcode ${frame.opcode}, request ${frame.requestId})`));
      return;
    }
    if (!payloadCrcMatches(frame, frame.payload)) {
      this.fail(new ReplicaClientError(ClientErrorCode.ChecksumMismatch, `reply to request ${frame.requestId} failed its payload CRC32C`));
      return;
    }
    this.pending.delete(frame.requestId);
    if (frame.opcode === Opcode.Ping) this.pingOutstanding = false;
    if (frame.status !== Status.Ok) this.settle(entry, ReplicaClientError.fromStatus(frame.status, frame.payload.toString('utf8', 0, 256), frame.epoch));
    else this.settle(entry, undefined, frame);
  }

  /** Runs a request's callback; one that throws is a bug of its caller, never a fault of this connection. */
  private settle(entry: Pending, err: ReplicaClientError | undefined, reply?: Frame): void {
    try {
      entry.done(err, reply);
    } catch (callbackErr) {
      this.log.error({ err: callbackErr }, 'replica request callback threw');
    }
  }

  private protocolFault(message: string, code?: string): ReplicaClientError {
    return new ReplicaClientError(ClientErrorCode.Protocol, `replica protocol fault${code ? ` (${code})` : ''}: ${message}`);
  }

  private sweep(): void {
    if (this.closedWith) return;
    const now = performance.now();
    const oldest = this.pending.values().next();
    if (!oldest.done && oldest.value.deadline <= now) {
      this.fail(new ReplicaClientError(ClientErrorCode.Timeout, `replica did not answer within ${this.requestTimeoutMs} ms`));
      return;
    }
    if (!this.pingOutstanding && now - this.lastHeard >= this.keepAliveMs) {
      this.pingOutstanding = true;
      // Its deadline makes a silent peer fail the connection; its failure is reported there.
      this.ping().catch(() => undefined);
    }
  }

  /** Fails every pending request with `err`, closes the socket and reports once. */
  private fail(err: ReplicaClientError): void {
    if (this.closedWith) return;
    this.closedWith = err;
    clearInterval(this.timer);
    this.blocked = undefined;
    this.socket.destroy();
    const pending = [...this.pending.values()];
    this.pending.clear();
    for (const p of pending) this.settle(p, err);
    if (err.code !== ClientErrorCode.Closed) {
      this.log.warn({ code: err.code, pending: pending.length }, 'replica connection failed');
      if (this.listenerCount('error') > 0) this.emit('error', err);
    }
    this.emit('close', err.code === ClientErrorCode.Closed ? undefined : err);
  }
}

function writeFields(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): FrameFields {
  const payloadCrc = data.length > 0 ? writeCrc(data) : undefined;
  return { opcode: Opcode.Write, requestId: 0, epoch, seq, offset, length: data.length, flags: fua ? FLAG_FUA : 0, payloadCrc };
}
