import type { Socket } from 'node:net';
import { BufferPool } from '../../common/buffer-pool';
import { errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { encodeHeader, payloadCrcMatches } from '../wire/frame-codec';
import { FrameDecoder } from '../wire/frame-decoder';
import {
  FLAG_FUA,
  FLAG_RESPONSE,
  OPCODE_NAMES,
  Opcode,
  Status,
  type Frame,
  type ReplicaHello,
  type StatusValue,
} from '../wire/protocol';
import { storeErrorToWireStatus } from './error-mapping';
import type { ReplicaContext } from './replica-context';

export interface ConnectionLimits {
  readonly maxPayload: number;
  /** Pause reading while requests being served hold more payload bytes than this. */
  readonly maxInflightBytes: number;
  /** ... or while more requests than this are being served. */
  readonly maxInflightRequests: number;
}

interface Reply {
  status: StatusValue;
  epoch?: number;
  seq?: number;
  offset?: number;
  length?: number;
  payload?: Buffer;
}

const EMPTY = Buffer.alloc(0);
const OK: Reply = { status: Status.Ok };
const okReply = (): Reply => OK;
const readReply = (payload: Buffer): Reply => ({ status: Status.Ok, payload });

/**
 * Payload buffers one connection keeps for reuse: up to eight 1 MiB writes,
 * dropped when the process turns idle. Smaller payloads come from malloc's heap.
 */
const PAYLOAD_POOL = { minPooled: 64 * 1024, maxKept: 8 * 1024 * 1024 };

// Request latency on the monotonic clock.
const { performance } = globalThis;

/**
 * One data-path connection: decodes frames, serves them concurrently (replies
 * carry the request id, so they may leave out of order) and applies
 * backpressure both ways: reading pauses while in-flight work is over budget
 * or while the socket's send buffer is full (write() returned false), and
 * resumes on completion or 'drain'. A protocol fault closes this connection
 * only, with one log line. Each request reaches the store synchronously from
 * the decode loop, so the store sees one connection's requests in the order
 * they were sent: the volume engine relies on that to leave no holes in a log.
 */
export class DataConnection {
  private readonly decoder: FrameDecoder;
  private readonly pool = new BufferPool(PAYLOAD_POOL);
  private readonly log: Logger;
  private inflightRequests = 0;
  private inflightBytes = 0;
  private waitingDrain = false;
  private corked = false;
  private greeted = false;

  constructor(
    private readonly socket: Socket,
    private readonly ctx: ReplicaContext,
    private readonly limits: ConnectionLimits,
    logger: Logger,
  ) {
    this.decoder = new FrameDecoder(limits.maxPayload, { allocate: (length) => this.pool.take(length) });
    this.log = logger.child({ remote: `${socket.remoteAddress}:${socket.remotePort}` });
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.log.debug({ err }, 'data connection error'));
    socket.once('close', () => this.pool.close());
  }

  /** Serves bytes read before this connection took the socket over (the protocol sniff). */
  feed(chunk: Buffer): void {
    this.onData(chunk);
  }

  private onData(chunk: Buffer): void {
    try {
      this.decoder.push(chunk, (frame) => this.dispatch(frame));
    } catch (err) {
      this.protocolFault(errorCode(err) ?? 'ERR_WIRE', (err as Error).message);
    }
  }

  private protocolFault(code: string, message: string): void {
    if (this.socket.destroyed) return; // later frames of the same chunk: already reported
    this.log.warn({ code, reason: message }, 'protocol fault, closing data connection');
    this.ctx.metrics.protocolErrors.inc({ code });
    this.socket.destroy();
  }

  private dispatch(frame: Frame): void {
    if (this.socket.destroyed) return;
    if ((frame.flags & FLAG_RESPONSE) !== 0) {
      this.protocolFault('ERR_WIRE_UNEXPECTED_RESPONSE', 'a client sent a response frame');
      return;
    }
    const held = frame.payload.length + (frame.opcode === Opcode.Read ? Math.min(frame.length, this.limits.maxPayload) : 0);
    this.track(1, held);
    const started = performance.now();
    this.serve(frame).then(
      (reply) => this.complete(frame, reply, held, started),
      (err: unknown) => this.complete(frame, this.failure(frame, err), held, started),
    );
  }

  private complete(frame: Frame, reply: Reply, held: number, started: number): void {
    // The store copied the payload (or refused it) before its promise settled: its buffer can be reused.
    this.pool.give(frame.payload);
    this.track(-1, -held);
    try {
      this.finish(frame, reply, started);
    } catch (err) {
      this.log.error({ err }, 'failed to send a reply, closing data connection');
      this.socket.destroy();
    }
  }

  private track(requests: number, bytes: number): void {
    this.inflightRequests += requests;
    this.inflightBytes += bytes;
    this.ctx.metrics.inflightRequests.inc(requests);
    this.ctx.metrics.inflightBytes.inc(bytes);
    this.updateFlow();
  }

  private updateFlow(): void {
    const over = this.inflightBytes > this.limits.maxInflightBytes || this.inflightRequests >= this.limits.maxInflightRequests;
    if (over || this.waitingDrain) this.socket.pause();
    else if (this.socket.isPaused()) this.socket.resume();
  }

  private finish(frame: Frame, reply: Reply, started: number): void {
    const ok = reply.status === Status.Ok;
    const bytes = !ok ? 0 : frame.opcode === Opcode.Write ? frame.payload.length : frame.opcode === Opcode.Read ? frame.length : 0;
    this.ctx.metrics.recordOp(frame.opcode, reply.status, (performance.now() - started) / 1000, bytes);
    if (this.log.isLevelEnabled('trace')) this.log.trace({ op: OPCODE_NAMES[frame.opcode], requestId: frame.requestId, seq: frame.seq, offset: frame.offset, status: reply.status }, 'request served');
    this.send(frame, reply);
  }

  private send(frame: Frame, reply: Reply): void {
    if (this.socket.destroyed) return;
    const payload = reply.payload ?? EMPTY;
    const header = encodeHeader(
      {
        opcode: frame.opcode,
        flags: FLAG_RESPONSE,
        status: reply.status,
        requestId: frame.requestId,
        epoch: reply.epoch ?? frame.epoch,
        seq: reply.seq ?? frame.seq,
        offset: reply.offset ?? frame.offset,
        length: reply.length ?? frame.length,
      },
      payload,
    );
    this.corkUntilNextTick();
    let ok = this.socket.write(header);
    if (payload.length > 0) ok = this.socket.write(payload) && ok;
    if (!ok && !this.waitingDrain) {
      this.waitingDrain = true;
      this.socket.once('drain', () => {
        this.waitingDrain = false;
        this.updateFlow();
      });
      this.updateFlow();
    }
  }

  /**
   * Replies completed in the same turn of the event loop leave in one writev:
   * headers and payloads are written as they are (no copy) and the socket is
   * uncorked in the check phase, once every store completion of this poll
   * phase has run (fewer sends here, fewer reads on the controller).
   */
  private corkUntilNextTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.socket.cork();
    setImmediate(() => {
      this.corked = false;
      this.socket.uncork();
    });
  }

  private failure(frame: Frame, err: unknown): Reply {
    const status = storeErrorToWireStatus(err);
    if (status === Status.Internal) this.log.error({ err, op: OPCODE_NAMES[frame.opcode] }, 'request failed unexpectedly');
    const reply: Reply = { status, payload: Buffer.from(String((err as Error)?.message ?? err).slice(0, 256)) };
    // A fenced-off sender learns the epoch that fenced it.
    if (status === Status.StaleEpoch) reply.epoch = this.ctx.epoch;
    return reply;
  }

  /**
   * Serves one request. Not an async function: on the write and read paths
   * the store's own promise, plus one then(), is the whole cost; anything the
   * store throws synchronously becomes a rejection all the same.
   */
  private serve(frame: Frame): Promise<Reply> {
    try {
      const reply = this.serveNow(frame);
      return reply instanceof Promise ? reply : Promise.resolve(reply);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  private serveNow(frame: Frame): Reply | Promise<Reply> {
    const store = this.ctx.store;
    if (!payloadCrcMatches(frame, frame.payload)) return { status: Status.ChecksumMismatch };
    if (frame.opcode === Opcode.Hello) return this.hello(frame);
    if (frame.opcode === Opcode.Ping) return this.ping();
    if (!this.greeted) return { status: Status.NotReady, payload: Buffer.from('hello first') };
    switch (frame.opcode) {
      case Opcode.Write:
        if (frame.payload.length === 0 || frame.length !== frame.payload.length) return { status: Status.BadRequest };
        return store.write(frame.epoch, frame.seq, frame.offset, frame.payload, (frame.flags & FLAG_FUA) !== 0).then(okReply);
      case Opcode.Unmap:
        return store.unmap(frame.epoch, frame.seq, frame.offset, frame.length).then(okReply);
      case Opcode.Flush:
        return store.flush(frame.epoch).then(okReply);
      case Opcode.Read:
        if (frame.length > this.limits.maxPayload) return { status: Status.BadRequest, payload: Buffer.from('read larger than the frame limit') };
        if (frame.epoch < this.ctx.epoch) return { status: Status.StaleEpoch, epoch: this.ctx.epoch };
        // An optional payload names a snapshot to read from instead of the head.
        return store.read(frame.offset, frame.length, frame.payload.length > 0 ? frame.payload.toString('utf8') : undefined).then(readReply);
    }
    return { status: Status.BadRequest };
  }

  private hello(frame: Frame): Reply {
    const info = this.ctx.store.info();
    const wanted = frame.payload.toString('utf8');
    if (wanted !== '' && info.volumeId !== '' && wanted !== info.volumeId) {
      return { status: Status.VolumeMismatch, payload: Buffer.from(`replica serves volume "${info.volumeId}"`) };
    }
    this.greeted = true;
    const hello: ReplicaHello = {
      replicaId: info.replicaId,
      volumeId: info.volumeId,
      size: info.size,
      epoch: info.epoch,
      lastSeq: info.lastSeq,
      durableSeq: info.durableSeq,
      state: info.state,
      maxPayload: this.limits.maxPayload,
    };
    return { status: Status.Ok, epoch: info.epoch, seq: info.lastSeq, offset: info.durableSeq, length: 0, payload: Buffer.from(JSON.stringify(hello)) };
  }

  private ping(): Reply {
    const info = this.ctx.store.info();
    return { status: info.state === 'ok' ? Status.Ok : Status.Corrupt, epoch: info.epoch, seq: info.lastSeq, offset: info.durableSeq, length: 0 };
  }
}
