import { randomInt } from 'node:crypto';
import type { Socket } from 'node:net';
import type { Logger } from '../../common/logger';
import { errorCode } from '../../common/errors';
import * as encode from '../pdu/encode';
import { PduError } from '../pdu/errors';
import { PduFramer, type RawPdu } from '../pdu/framer';
import { InitiatorOpcode, LoginStatus, RESERVED_TAG, RejectReason } from '../pdu/opcodes';
import { parseLoginRequest, parsePdu } from '../pdu/parse';
import { encodeTextPairs } from '../pdu/text';
import { LoginState, type LoginEnvironment, type LoginOutcome } from '../login/login-state';
import type { TransportMetrics } from './metrics';
import type { PendingPdu } from './responses';
import type { IscsiSession, SessionChannel } from './session';

/** Tuning of one connection; tests shorten the timers. */
export interface ConnectionOptions {
  /** Idle time before the target pings the initiator with a NOP-In (RFC 7143 §11.19). */
  readonly nopIntervalMs: number;
  /** How long a ping, or a write the peer does not read, may stay unanswered before the connection is dropped. */
  readonly nopTimeoutMs: number;
  /** Time allowed to reach full feature phase. */
  readonly loginTimeoutMs: number;
  /** Reading pauses, and commands wait to start, while queued output exceeds this many bytes. */
  readonly inflightBudget: number;
  /** Write data a session may buffer for admitted commands; further writes wait for their R2Ts. */
  readonly writeBudget: number;
}

export const DEFAULT_CONNECTION_OPTIONS: ConnectionOptions = {
  nopIntervalMs: 15_000,
  nopTimeoutMs: 30_000,
  loginTimeoutMs: 30_000,
  inflightBudget: 16 * 1024 * 1024,
  writeBudget: 64 * 1024 * 1024,
};

/** Output of one tick up to this size is joined into one buffer before it is written. */
const COALESCE_BYTES = 64 * 1024;

/** What a connection needs from the server. */
export interface ConnectionHost {
  readonly loginEnvironment: LoginEnvironment;
  /** Creates the session for a completed login, or refuses it with a login status. */
  openSession(outcome: LoginOutcome, connection: IscsiConnection): IscsiSession | LoginStatus;
  connectionClosed(connection: IscsiConnection): void;
}

/**
 * One TCP connection (RFC 7143 §4.3): framing, the login phase, StatSN, the
 * keep-alive ping and flow control. Reading is pull-based: the socket is
 * paused while queued output is over budget, and write data is bounded by the
 * session's admission of writes, so a peer that stops reading or floods us
 * holds a bounded amount of memory.
 */
export class IscsiConnection implements SessionChannel {
  cid = 0;
  session?: IscsiSession;
  private statSN = randomInt(1, 0x7fffffff);
  private readonly framer: PduFramer;
  private login?: LoginState;
  private closed = false;
  private paused = false;
  private closeAfterWrite = false;
  /** Frames written this tick, sent together when the tick ends (see flushOutput). */
  private outParts: Buffer[] = [];
  private outBytes = 0;
  private flushScheduled = false;
  /** Data-In bytes of running commands, not produced yet (reserveOutput). */
  private reservedBytes = 0;
  private lastReceive = Date.now();
  private ping?: { ttt: number; sentAt: number };
  private stall?: { written: number; since: number };
  private readonly writableWaiters: Array<() => void> = [];
  private readonly timer: NodeJS.Timeout;
  private readonly loginTimer: NodeJS.Timeout;

  constructor(
    private readonly socket: Socket,
    private readonly host: ConnectionHost,
    readonly logger: Logger,
    private readonly metrics: TransportMetrics,
    private readonly options: ConnectionOptions,
  ) {
    this.framer = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: false, dataDigest: false });
    this.login = new LoginState(host.loginEnvironment);
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('drain', () => {
      this.wakeWriters();
      this.maybeResume();
    });
    socket.on('error', (err) => this.logger.debug({ err }, 'socket error'));
    socket.on('close', () => this.teardown('peer closed'));
    this.timer = setInterval(() => this.tick(), Math.max(10, Math.min(this.options.nopIntervalMs, this.options.nopTimeoutMs) / 2));
    this.timer.unref();
    this.loginTimer = setTimeout(() => this.close('login timeout'), this.options.loginTimeoutMs);
    this.loginTimer.unref();
  }

  get writeBudget(): number {
    return this.options.writeBudget;
  }

  get localAddress(): string {
    const address = (this.socket.localAddress ?? '127.0.0.1').replace(/^::ffff:/, '');
    const host = address.includes(':') ? `[${address}]` : address;
    return `${host}:${this.socket.localPort ?? 3260}`;
  }

  get remoteAddress(): string {
    return `${this.socket.remoteAddress ?? '?'}:${this.socket.remotePort ?? 0}`;
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.lastReceive = Date.now();
    this.metrics.countBytes('in', chunk.length);
    this.framer.write(chunk);
    this.pump();
  }

  /** Frames and handles PDUs until the input runs dry or the budget says stop. */
  private pump(): void {
    while (!this.closed && !this.paused) {
      let raw: RawPdu | undefined;
      try {
        raw = this.framer.next();
      } catch (err) {
        this.fault(err);
        return;
      }
      if (!raw) return;
      this.metrics.countPdu('in', raw.bhs[0] & 0x3f);
      try {
        if (this.login) this.onLoginPdu(raw);
        else this.onFullFeaturePdu(raw);
      } catch (err) {
        this.fault(err, raw);
      }
      if (this.overBudget()) {
        this.paused = true;
        this.socket.pause();
      }
    }
  }

  private overBudget(): boolean {
    return this.socket.writableLength + this.outBytes + this.reservedBytes > this.options.inflightBudget;
  }

  reserveOutput(bytes: number): void {
    this.reservedBytes += bytes;
  }

  releaseOutput(bytes: number): void {
    this.reservedBytes -= bytes;
    this.wakeWriters();
    this.maybeResume();
  }

  get writableNow(): boolean {
    return this.closed || !this.overBudget();
  }

  private maybeResume(): void {
    if (!this.paused || this.closed || this.overBudget()) return;
    this.paused = false;
    this.pump();
    if (!this.paused && !this.closed) this.socket.resume();
  }

  writable(): Promise<void> {
    if (this.writableNow) return Promise.resolve();
    return new Promise((resolve) => this.writableWaiters.push(resolve));
  }

  private wakeWriters(): void {
    if (!this.writableNow) return;
    for (const resolve of this.writableWaiters.splice(0)) resolve();
  }

  /** A protocol fault: Reject when the PDU can be named and the stream is still sound, else close (ERL 0). */
  private fault(err: unknown, raw?: RawPdu): void {
    const code = errorCode(err) ?? 'ERR_INTERNAL';
    this.metrics.protocolErrors.inc({ code });
    if (!(err instanceof PduError)) {
      this.logger.error({ err }, 'unexpected failure handling a PDU');
      this.close('internal error');
      return;
    }
    this.logger.warn({ code, detail: err.message, remote: this.remoteAddress }, 'protocol error');
    const header = err.header ?? raw?.bhs;
    if (err.rejectReason === undefined || !header || this.login) {
      this.close(code);
      return;
    }
    const reject: PendingPdu = { status: true, build: (seq) => encode.reject({ reason: err.rejectReason as number, header, seq }) };
    // A broken data transfer cannot be resumed at ERL 0; other rejected PDUs leave the session usable.
    if (err.rejectReason === RejectReason.ProtocolError || err.rejectReason === RejectReason.DataDigestError) this.sendAndClose([reject], code);
    else this.send([reject]);
  }

  private onLoginPdu(raw: RawPdu): void {
    const opcode = raw.bhs[0] & 0x3f;
    if (opcode !== InitiatorOpcode.LoginRequest || !raw.dataDigestOk) {
      this.close('non-login PDU during login');
      return;
    }
    const pdu = parseLoginRequest(raw);
    const login = this.login as LoginState;
    const reply = login.handle(pdu);
    this.cid = pdu.cid;
    let tsih = 0;
    let status = reply.status;
    if (reply.complete && status === LoginStatus.Success) {
      const opened = this.host.openSession(login.outcome(pdu.tsih), this);
      if (typeof opened === 'number') status = opened;
      else {
        this.session = opened;
        tsih = opened.tsih;
      }
    }
    const failed = status !== LoginStatus.Success;
    const seq = { statSN: this.statSN, expCmdSN: pdu.cmdSN, maxCmdSN: pdu.cmdSN };
    if (this.session) Object.assign(seq, { expCmdSN: this.session.expCmdSN, maxCmdSN: this.session.maxCmdSN });
    this.statSN = (this.statSN + 1) >>> 0;
    const response = encode.loginResponse({
      transit: !failed && reply.transit,
      csg: reply.csg,
      nsg: reply.nsg,
      isid: pdu.isid,
      tsih: failed ? 0 : tsih || pdu.tsih,
      itt: pdu.itt,
      status,
      seq,
      data: failed ? Buffer.alloc(0) : encodeTextPairs(reply.pairs),
    });
    this.write(response);
    if (failed) {
      this.logger.info({ status: `0x${status.toString(16).padStart(4, '0')}`, remote: this.remoteAddress }, 'login refused');
      this.endAfterWrite('login refused');
      return;
    }
    if (this.session) {
      // Digests and our MaxRecvDataSegmentLength apply from the first PDU after the final login response (§13.1, §13.12).
      const params = this.session.params;
      this.framer.limits.headerDigest = params.headerDigest;
      this.framer.limits.dataDigest = params.dataDigest;
      this.framer.limits.maxDataSegmentLength = params.targetMaxRecvDataSegmentLength;
      this.login = undefined;
      clearTimeout(this.loginTimer);
    }
  }

  private onFullFeaturePdu(raw: RawPdu): void {
    const session = this.session as IscsiSession;
    if (!raw.dataDigestOk) {
      // RFC 7143 §7.8: a payload digest error is answered with Reject and the PDU discarded.
      throw new PduError('ERR_ISCSI_DATA_DIGEST', 'data digest mismatch', { rejectReason: RejectReason.DataDigestError, header: raw.bhs });
    }
    const pdu = parsePdu(raw);
    if (pdu.opcode === InitiatorOpcode.NopOut && pdu.itt === RESERVED_TAG && this.ping?.ttt === pdu.ttt) this.ping = undefined;
    session.handle(pdu, raw.bhs);
  }

  send(pdus: PendingPdu[]): void {
    // Nothing follows a logout response or a final Reject once the close has begun.
    if (this.closed || this.closeAfterWrite) return;
    const session = this.session;
    for (const pending of pdus) {
      const seq = { statSN: this.statSN, expCmdSN: session?.expCmdSN ?? 0, maxCmdSN: session?.maxCmdSN ?? 0 };
      const pdu = pending.build(seq);
      if (pending.status) this.statSN = (this.statSN + 1) >>> 0;
      this.write(pdu);
    }
    if (this.overBudget() && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  private write(pdu: encode.OutPdu): void {
    const parts = encode.frame(pdu, { header: this.framer.limits.headerDigest && !this.login, data: this.framer.limits.dataDigest && !this.login });
    let bytes = 0;
    for (const part of parts) {
      bytes += part.length;
      this.outParts.push(part);
    }
    this.outBytes += bytes;
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      process.nextTick(this.flushOutput);
    }
    this.metrics.countPdu('out', pdu.bhs[0] & 0x3f);
    this.metrics.countBytes('out', bytes);
  }

  /**
   * Sends what this tick wrote. The tick's last nextTick runs after every
   * promise that settled in it, so the responses of all commands a read of
   * the socket completed go out together. Small batches (a 4 KiB Data-In and
   * its header, a few responses) are joined into one buffer: one
   * socket.write, one send(2), where a write per part costs a stream request
   * each; large data is passed as is, corked into one writev.
   */
  private readonly flushOutput = (): void => {
    this.flushScheduled = false;
    const parts = this.outParts;
    const bytes = this.outBytes;
    if (parts.length === 0) return;
    this.outParts = [];
    this.outBytes = 0;
    if (this.closed) return;
    if (parts.length === 1) this.socket.write(parts[0]);
    else if (bytes <= COALESCE_BYTES) this.socket.write(Buffer.concat(parts, bytes));
    else {
      this.socket.cork();
      for (const part of parts) this.socket.write(part);
      this.socket.uncork();
    }
    // The budget counted these bytes before they reached the socket; if the socket took them
    // without filling up, no 'drain' will come to wake what waited on them.
    if (this.writableWaiters.length > 0) this.wakeWriters();
    // Not when closing: endAfterWrite flushes from inside pump(), which must not run again under itself.
    if (this.paused && !this.closeAfterWrite) this.maybeResume();
  };

  sendAndClose(pdus: PendingPdu[], reason: string): void {
    this.send(pdus);
    this.endAfterWrite(reason);
  }

  /** Sends an Asynchronous Message asking the initiator to log out within `seconds` (RFC 7143 §11.9.1). */
  requestLogout(seconds: number): void {
    if (!this.session) return;
    this.send([{ status: true, build: (seq) => encode.asyncMessage({ event: 1, seq, parameter3: seconds }) }]);
  }

  private endAfterWrite(reason: string): void {
    if (this.closeAfterWrite || this.closed) return;
    this.closeAfterWrite = true;
    this.flushOutput();
    this.socket.end(() => this.close(reason));
    // A peer that never reads would keep end() pending; the tick drops it after nopTimeoutMs.
  }

  private tick(): void {
    const now = Date.now();
    if (this.socket.writableLength + this.outBytes > 0) {
      const written = this.socket.bytesWritten;
      if (!this.stall || this.stall.written !== written) this.stall = { written, since: now };
      else if (now - this.stall.since > this.options.nopTimeoutMs) return this.close('peer stopped reading');
    } else this.stall = undefined;
    if (this.login || this.closeAfterWrite) return;
    if (this.ping) {
      if (now - this.ping.sentAt > this.options.nopTimeoutMs) this.close('NOP-In ping unanswered');
      return;
    }
    if (now - this.lastReceive >= this.options.nopIntervalMs && this.session) {
      const ttt = this.session.newTtt();
      this.ping = { ttt, sentAt: now };
      // A ping carries the reserved ITT and does not advance StatSN (§11.19).
      this.send([{ status: false, build: (seq) => encode.nopIn({ lun: 0, itt: RESERVED_TAG, ttt, seq }) }]);
    }
  }

  close(reason: string): void {
    if (this.closed) return;
    this.logger.debug({ reason, remote: this.remoteAddress }, 'closing connection');
    this.teardown(reason);
    this.socket.destroy();
  }

  private teardown(reason: string): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.loginTimer);
    this.wakeWriters();
    this.session?.end(reason);
    this.host.connectionClosed(this);
  }
}
