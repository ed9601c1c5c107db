import { performance } from 'node:perf_hooks';
import type { Logger } from '../../common/logger';
import * as encode from '../pdu/encode';
import { PduError } from '../pdu/errors';
import { InitiatorOpcode, LogoutReason, LogoutResponseCode, RESERVED_TAG, RejectReason } from '../pdu/opcodes';
import type { DataOutPdu, InitiatorPdu, LogoutRequestPdu, NopOutPdu, ScsiCommandPdu, TextRequestPdu } from '../pdu/parse';
import type { SessionParams } from '../login/params';
import { MAX_TRANSFER_BYTES } from '../scsi/logical-unit';
import { ScsiStatus, type Nexus, type ScsiResult } from '../scsi/types';
import { CmdSnWindow } from './cmdsn-window';
import { commandClass, type TransportMetrics } from './metrics';
import { responsePdus, type PendingPdu } from './responses';
import type { SessionChannel, SessionHooks, SessionView, Task, TargetEntry } from './session-types';
import { WriteCollector } from './scsi-task';
import { StartQueue } from './start-queue';
import { TaskAbort } from './task-abort';
import { taskManagement } from './task-management';
import { TextExchange } from './text-exchange';

export type { SessionChannel, SessionHooks, SessionView, Task, TargetEntry } from './session-types';

/** Commands the window admits at once: MaxCmdSN = ExpCmdSN + depth - 1 (flow control, §4.2.2.1). */
export const COMMAND_WINDOW = 64;
/** Immediate commands (I bit) in flight at once; they bypass the CmdSN window, so they get their own bound. */
export const IMMEDIATE_LIMIT = 16;
/**
 * Largest ExpectedDataTransferLength accepted for a write, so one command
 * cannot claim unbounded memory: the maximum transfer the SCSI layer
 * advertises in its Block Limits VPD page.
 */
export const MAX_WRITE_BYTES = MAX_TRANSFER_BYTES;

const INVALID_FIELD_IN_CDB = Buffer.from([0x70, 0, 0x05, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x24, 0, 0, 0, 0, 0]);

/**
 * One iSCSI session in full feature phase (RFC 7143 §4.3, ERL 0, one
 * connection): the CmdSN window, the task table, Data-Out and R2T, and the
 * non-SCSI requests (NOP, Text, Logout, Task Management).
 */
export class IscsiSession implements SessionView {
  readonly tasks = new Map<number, Task>();
  readonly window: CmdSnWindow;
  readonly type: 'normal' | 'discovery';
  private nextTtt = 1;
  private ended = false;
  private readonly starts: StartQueue;
  private readonly text = new TextExchange();
  /** Bytes of write buffers allocated for admitted commands not yet finished. */
  admittedBytes = 0;
  /** Writes waiting for admission, in arrival order. */
  private readonly admitQueue: Task[] = [];

  constructor(
    readonly tsih: number,
    readonly nexus: Nexus,
    readonly params: SessionParams,
    initialCmdSN: number,
    readonly target: TargetEntry | undefined,
    readonly channel: SessionChannel,
    readonly hooks: SessionHooks,
    readonly logger: Logger,
    readonly metrics: TransportMetrics,
  ) {
    this.window = new CmdSnWindow(initialCmdSN, COMMAND_WINDOW);
    this.starts = new StartQueue(channel, (task) => this.start(task), logger);
    this.type = target ? 'normal' : 'discovery';
    target?.scsi.nexusAdded(nexus);
  }

  get expCmdSN(): number {
    return this.window.expCmdSN;
  }

  get maxCmdSN(): number {
    return this.window.maxCmdSN;
  }

  /** Handles one full-feature PDU. Throws PduError for faults the connection answers or closes on. */
  handle(pdu: InitiatorPdu, header: Buffer): void {
    switch (pdu.opcode) {
      case InitiatorOpcode.ScsiCommand:
        return this.command(pdu, header);
      case InitiatorOpcode.DataOut:
        return this.dataOut(pdu, header);
      case InitiatorOpcode.NopOut:
        return this.nopOut(pdu);
      case InitiatorOpcode.TextRequest:
        return this.textRequest(pdu, header);
      case InitiatorOpcode.LogoutRequest:
        return this.logout(pdu);
      case InitiatorOpcode.TaskManagementRequest:
        if (!this.target) throw new PduError('ERR_ISCSI_PROTOCOL', 'task management in a discovery session', { rejectReason: RejectReason.ProtocolError, header });
        return this.inOrder(pdu.immediate, pdu.cmdSN, () => {
          taskManagement(this, pdu).catch((err: unknown) => {
            this.logger.error({ err }, 'task management failed');
            this.channel.close('task management failed');
          });
        });
      case InitiatorOpcode.SnackRequest:
        // ERL 0 offers no SNACK support (RFC 7143 §7.1.4).
        throw new PduError('ERR_ISCSI_SNACK', 'SNACK at ErrorRecoveryLevel 0', { rejectReason: RejectReason.CommandNotSupported, header });
      case InitiatorOpcode.LoginRequest:
        throw new PduError('ERR_ISCSI_PROTOCOL', 'login request in full feature phase', { rejectReason: RejectReason.ProtocolError, header });
    }
  }

  /** Runs `run` in CmdSN order, or at once for an immediate PDU; a CmdSN outside the window is ignored (§4.2.2.1). */
  inOrder(immediate: boolean, cmdSN: number, run: () => void): void {
    if (immediate) return run();
    if (!this.window.accept(cmdSN)) {
      this.logger.debug({ cmdSN, expCmdSN: this.expCmdSN }, 'CmdSN outside the window ignored');
      return;
    }
    this.window.markReady(cmdSN, run);
  }

  newTtt(): number {
    const ttt = this.nextTtt;
    this.nextTtt = this.nextTtt >= 0x7fffffff ? 1 : this.nextTtt + 1;
    return ttt;
  }

  private command(pdu: ScsiCommandPdu, header: Buffer): void {
    if (!this.target) throw new PduError('ERR_ISCSI_PROTOCOL', 'SCSI command in a discovery session', { rejectReason: RejectReason.ProtocolError, header });
    if (pdu.itt === RESERVED_TAG || this.tasks.has(pdu.itt)) throw new PduError('ERR_ISCSI_TASK_TAG', 'initiator task tag in use', { rejectReason: RejectReason.TaskInProgress, header });
    if (pdu.immediate && [...this.tasks.values()].filter((t) => t.immediate).length >= IMMEDIATE_LIMIT) {
      // RFC 7143 §11.17.1: too many immediate commands.
      throw new PduError('ERR_ISCSI_IMMEDIATE_LIMIT', 'too many immediate commands', { rejectReason: RejectReason.ImmediateCommandReject, header });
    }
    if (!pdu.immediate && !this.window.accept(pdu.cmdSN)) {
      this.logger.debug({ cmdSN: pdu.cmdSN, expCmdSN: this.expCmdSN }, 'CmdSN outside the window ignored');
      return;
    }
    const task: Task = {
      itt: pdu.itt,
      lun: pdu.lun,
      cmdSN: pdu.cmdSN,
      immediate: pdu.immediate,
      pdu,
      controller: new TaskAbort(),
      started: performance.now(),
      commandClass: commandClass(pdu.cdb),
      aborted: false,
    };
    this.metrics.countCommand(task.commandClass);
    this.tasks.set(task.itt, task);
    if (pdu.write && pdu.expectedDataTransferLength > MAX_WRITE_BYTES) {
      this.ready(task, () => this.finish(task, { status: ScsiStatus.CheckCondition, sense: INVALID_FIELD_IN_CDB }));
      return;
    }
    if (pdu.write && pdu.expectedDataTransferLength > 0) {
      try {
        task.collector = new WriteCollector(pdu, this.params);
      } catch (err) {
        this.forget(task);
        // The CmdSN was taken; release it so later commands are not held up behind it.
        if (!task.immediate) this.window.cancel(task.cmdSN);
        if (err instanceof PduError) throw new PduError(err.code, err.message, { rejectReason: err.rejectReason, header });
        throw err;
      }
      this.admitQueue.push(task);
      this.admitWaiting();
      return;
    }
    this.ready(task, () => this.execute(task));
  }

  /**
   * Admits waiting writes in arrival order while their buffers fit the write
   * budget; one write is always admitted when none is, so any single command
   * can make progress. Admitted commands get their R2Ts; those never block on
   * later ones, so the budget cannot deadlock.
   */
  private admitWaiting(): void {
    while (!this.ended && this.admitQueue.length > 0) {
      const task = this.admitQueue[0];
      const size = task.pdu.expectedDataTransferLength;
      if (this.admittedBytes > 0 && this.admittedBytes + size > this.channel.writeBudget) return;
      this.admitQueue.shift();
      const collector = task.collector as WriteCollector;
      collector.admit();
      this.admittedBytes += size;
      this.sendR2ts(task);
      if (collector.complete) this.ready(task, () => this.execute(task));
    }
  }

  private ready(task: Task, run: () => void): void {
    if (task.immediate) run();
    else this.window.markReady(task.cmdSN, run);
  }

  private sendR2ts(task: Task): void {
    const collector = task.collector as WriteCollector;
    const r2ts = collector.nextR2ts(() => this.newTtt());
    if (r2ts.length === 0) return;
    this.channel.send(
      r2ts.map((r) => ({
        status: false,
        build: (seq) => encode.r2t({ lun: task.lun, itt: task.itt, ttt: r.ttt, seq, r2tSN: r.r2tSN, bufferOffset: r.offset, desiredLength: r.length }),
      })),
    );
  }

  private dataOut(pdu: DataOutPdu, header: Buffer): void {
    const task = this.tasks.get(pdu.itt);
    if (!task || !task.collector || task.collector.complete) {
      // Data for a task that was aborted meanwhile is expected; anything else is a protocol fault.
      if (task?.aborted) return;
      throw new PduError('ERR_ISCSI_PROTOCOL', 'Data-Out for no task awaiting data', { rejectReason: RejectReason.ProtocolError, header });
    }
    if (task.aborted) return;
    task.collector.accept(pdu, header);
    this.sendR2ts(task);
    if (task.collector.complete) this.ready(task, () => this.execute(task));
  }

  private execute(task: Task): void {
    this.starts.push(task);
  }

  private start(task: Task): void {
    if (task.aborted || this.ended) return;
    const scsi = (this.target as TargetEntry).scsi;
    const pdu = task.pdu;
    // The Data-In counts against the output budget from now on, so the commands started
    // before any of them finishes cannot queue more than the budget (plus one command).
    if (pdu.read && pdu.expectedDataTransferLength > 0) {
      task.reservedOutput = pdu.expectedDataTransferLength;
      this.channel.reserveOutput(task.reservedOutput);
    }
    let running: Promise<ScsiResult>;
    try {
      running = scsi.execute({
        nexus: this.nexus,
        lun: task.lun,
        cdb: pdu.cdb,
        dataOut: pdu.write ? (task.collector?.data ?? Buffer.alloc(0)) : undefined,
        expectedDataTransferLength: pdu.expectedDataTransferLength,
        taskAttribute: pdu.taskAttribute,
        signal: task.controller.signal,
      });
    } catch (err) {
      running = Promise.reject(err);
    }
    task.running = running.then(
      (result) => this.finish(task, result),
      (err: unknown) => {
        this.logger.error({ err, itt: task.itt }, 'SCSI layer failed a command');
        this.finish(task, { status: ScsiStatus.CheckCondition, sense: Buffer.from([0x70, 0, 0x04, 0, 0, 0, 0, 10, 0, 0, 0, 0, 0x44, 0, 0, 0, 0, 0]) });
      },
    );
  }

  private finish(task: Task, result: ScsiResult): void {
    const r2tCount = task.collector?.r2tCount ?? 0;
    this.forget(task);
    if (task.aborted || this.ended) {
      this.releaseOutput(task);
      return;
    }
    const pdu = task.pdu;
    this.metrics.observeLatency(task.commandClass, (performance.now() - task.started) / 1000);
    const limits = { maxSegment: this.params.initiatorMaxRecvDataSegmentLength, maxBurstLength: this.params.maxBurstLength };
    const command = {
      itt: task.itt,
      lun: task.lun,
      read: pdu.read,
      write: pdu.write,
      expectedDataTransferLength: pdu.bidiReadLength ?? pdu.expectedDataTransferLength,
      r2tCount,
    };
    this.channel.send(responsePdus(command, result, limits));
    this.releaseOutput(task);
  }

  private releaseOutput(task: Task): void {
    const reserved = task.reservedOutput;
    if (reserved === undefined) return;
    task.reservedOutput = undefined;
    this.channel.releaseOutput(reserved);
  }

  /** Drops a task from the table and releases its write buffer and budget. */
  forget(task: Task): void {
    if (this.tasks.get(task.itt) === task) this.tasks.delete(task.itt);
    const collector = task.collector;
    if (!collector) return;
    task.collector = undefined;
    if (collector.admitted) this.admittedBytes -= task.pdu.expectedDataTransferLength;
    const waiting = this.admitQueue.indexOf(task);
    if (waiting >= 0) this.admitQueue.splice(waiting, 1);
    this.admitWaiting();
  }

  /** Aborts the matching tasks (no response is sent for them) and waits for those already running. */
  async abortWhere(match: (task: Task) => boolean): Promise<void> {
    const running: Promise<void>[] = [];
    for (const task of [...this.tasks.values()]) {
      if (!match(task) || task.aborted) continue;
      task.aborted = true;
      task.controller.abort();
      if (task.running) running.push(task.running);
      else {
        this.forget(task);
        if (!task.immediate) this.window.cancel(task.cmdSN);
      }
    }
    await Promise.all(running);
  }

  private nopOut(pdu: NopOutPdu): void {
    const reply = (): void => {
      if (pdu.itt === RESERVED_TAG) return;
      // A NOP-Out with a valid ITT is a ping; the NOP-In echoes its data (§11.18).
      this.channel.send([{ status: true, build: (seq) => encode.nopIn({ lun: pdu.lun, itt: pdu.itt, ttt: RESERVED_TAG, seq, data: pdu.data }) }]);
    };
    // NOP-Out with ITT 0xffffffff answers our ping and must be immediate (§11.18.1); it takes no CmdSN.
    if (pdu.itt === RESERVED_TAG) return;
    this.inOrder(pdu.immediate, pdu.cmdSN, reply);
  }

  private textRequest(pdu: TextRequestPdu, header: Buffer): void {
    this.inOrder(pdu.immediate, pdu.cmdSN, () => {
      let pdus: PendingPdu[];
      try {
        pdus = this.text.handle(pdu, {
          maxSegment: this.params.initiatorMaxRecvDataSegmentLength,
          newTtt: () => this.newTtt(),
          answer: (pairs) => pairs.map(([key, value]) => (key === 'SendTargets' ? this.hooks.sendTargets(value, this, this.channel.localAddress) : [[key, 'NotUnderstood'] as [string, string]])).flat(),
        });
      } catch (err) {
        this.logger.warn({ err }, 'malformed text request');
        pdus = [{ status: true, build: (seq) => encode.reject({ reason: RejectReason.ProtocolError, header, seq }) }];
      }
      this.channel.send(pdus);
    });
  }

  private logout(pdu: LogoutRequestPdu): void {
    this.inOrder(pdu.immediate, pdu.cmdSN, () => {
      const respond = (response: number): PendingPdu => ({
        status: true,
        build: (seq) => encode.logoutResponse({ itt: pdu.itt, response, seq, time2Wait: this.params.defaultTime2Wait, time2Retain: this.params.defaultTime2Retain }),
      });
      if (pdu.reason === LogoutReason.RemoveConnectionForRecovery) {
        // Connection recovery needs ERL 2 (§6.2); we negotiate ERL 0.
        this.channel.send([respond(LogoutResponseCode.RecoveryNotSupported)]);
        return;
      }
      if (pdu.reason === LogoutReason.CloseConnection && pdu.cid !== this.channel.cid) {
        this.channel.send([respond(LogoutResponseCode.CidNotFound)]);
        return;
      }
      // Commands already accepted finish before the response (§11.14: logout is ordered by CmdSN).
      const running = [...this.tasks.values()].map((t) => t.running).filter((p): p is Promise<void> => p !== undefined);
      void Promise.all(running).then(() => {
        this.channel.sendAndClose([respond(LogoutResponseCode.Success)], 'logout');
      });
    });
  }

  /** Ends the session: every task is aborted, the SCSI layer forgets the nexus. Idempotent. */
  end(reason: string): void {
    if (this.ended) return;
    this.ended = true;
    for (const task of this.tasks.values()) {
      task.aborted = true;
      task.controller.abort();
    }
    for (const task of [...this.tasks.values()]) this.forget(task);
    this.target?.scsi.nexusRemoved(this.nexus);
    this.logger.info({ reason }, 'session ended');
    this.hooks.ended(this);
  }
}
