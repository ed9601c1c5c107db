import type { ScsiCommandPdu } from '../pdu/parse';
import type { Nexus, ScsiTarget } from '../scsi/types';
import type { TargetConfig } from '../target-config';
import type { CmdSnWindow } from './cmdsn-window';
import type { PendingPdu } from './responses';
import type { WriteCollector } from './scsi-task';
import type { TaskAbort } from './task-abort';

/**
 * The types shared by the session, its task management and the server, kept
 * apart so those modules depend on these and not on each other.
 */

/** What a session needs from the connection carrying it. */
export interface SessionChannel {
  readonly cid: number;
  send(pdus: PendingPdu[]): void;
  /** Sends, then closes the connection once the bytes are written. */
  sendAndClose(pdus: PendingPdu[], reason: string): void;
  close(reason: string): void;
  /** Bytes of write data the session may hold for admitted commands. */
  readonly writeBudget: number;
  /** Resolves once queued output is under budget (or the connection is gone). */
  writable(): Promise<void>;
  /** Whether queued and reserved output is under budget now (writable() would resolve at once). */
  readonly writableNow: boolean;
  /** Counts output a started command will produce (its Data-In) against the budget until released. */
  reserveOutput(bytes: number): void;
  releaseOutput(bytes: number): void;
  /** The portal's address as initiators should dial it, for SendTargets. */
  readonly localAddress: string;
}

export interface TargetEntry {
  readonly config: TargetConfig;
  readonly scsi: ScsiTarget;
}

/** Server-wide services a session calls into. */
export interface SessionHooks {
  /** Aborts matching tasks in every session of the target (CLEAR TASK SET, LUN RESET, TARGET WARM RESET). */
  abortAcrossTarget(iqn: string, match: (task: Task) => boolean): Promise<void>;
  /** The SendTargets answer (RFC 7143 §13.3, Appendix C). */
  sendTargets(value: string, session: SessionView, localAddress: string): Array<[string, string]>;
  ended(session: SessionView): void;
}

export interface Task {
  readonly itt: number;
  readonly lun: number;
  readonly cmdSN: number;
  readonly immediate: boolean;
  readonly pdu: ScsiCommandPdu;
  readonly controller: TaskAbort;
  /** performance.now() at receipt, for the latency histogram. */
  readonly started: number;
  /** Output reserved for the command's Data-In while it runs (SessionChannel.reserveOutput). */
  reservedOutput?: number;
  /** Metric class of the CDB, worked out once. */
  readonly commandClass: 'read' | 'write' | 'other';
  collector?: WriteCollector;
  aborted: boolean;
  running?: Promise<void>;
}

/** What task management and the server see of a session. */
export interface SessionView {
  readonly tsih: number;
  readonly type: 'normal' | 'discovery';
  readonly nexus: Nexus;
  readonly target: TargetEntry | undefined;
  readonly tasks: Map<number, Task>;
  readonly window: CmdSnWindow;
  readonly channel: SessionChannel;
  readonly hooks: SessionHooks;
  readonly expCmdSN: number;
  readonly maxCmdSN: number;
  abortWhere(match: (task: Task) => boolean): Promise<void>;
}
