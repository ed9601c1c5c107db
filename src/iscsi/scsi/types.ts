/**
 * The contract between the iSCSI transport (PDUs, sessions, connections) and the
 * SCSI layer (CDBs against BlockDevices). The transport gathers all of a
 * command's Data-Out before calling `execute`, and turns the result into
 * Data-In / SCSI Response PDUs, with residuals computed against the
 * ExpectedDataTransferLength.
 */

/** The I_T nexus: one iSCSI session (initiator name + ISID) on one target portal group. */
export interface Nexus {
  /** Stable key for per-nexus state (unit attentions, reservations): `${initiatorName},i,0x${isid}`. */
  readonly id: string;
  readonly initiatorName: string;
  /** ISID as 12 hex digits. */
  readonly isid: string;
  readonly targetName: string;
  readonly portalGroupTag: number;
}

/** SAM task attributes (RFC 7143 §11.3.1 ATTR field). */
export type TaskAttribute = 'untagged' | 'simple' | 'ordered' | 'head-of-queue' | 'aca';

export interface ScsiCommand {
  readonly nexus: Nexus;
  /** LUN as a flat number (single-level LUN addressing, 0..16383). */
  readonly lun: number;
  /** The CDB, 6 to 16 bytes (more with an extended CDB AHS). */
  readonly cdb: Buffer;
  /** Everything the initiator sent as Data-Out, in order; undefined when no W bit. */
  readonly dataOut?: Buffer;
  readonly expectedDataTransferLength: number;
  readonly taskAttribute: TaskAttribute;
  /** Aborted by task management (ABORT TASK, LUN RESET, ...). */
  readonly signal?: TaskSignal;
}

/**
 * What the SCSI layer needs of an abort signal: the subset of AbortSignal it
 * uses, so the transport can hand in a lighter object than an AbortController
 * per command (one is created for every I/O).
 */
export interface TaskSignal {
  readonly aborted: boolean;
  addEventListener(type: 'abort', listener: () => void, options?: { once?: boolean }): void;
  removeEventListener(type: 'abort', listener: () => void): void;
}

export const enum ScsiStatus {
  Good = 0x00,
  CheckCondition = 0x02,
  ConditionMet = 0x04,
  Busy = 0x08,
  ReservationConflict = 0x18,
  TaskSetFull = 0x28,
  AcaActive = 0x30,
  TaskAborted = 0x40,
}

export interface ScsiResult {
  status: ScsiStatus;
  /** Fixed-format sense data (SPC-4 §4.5.3), present with CHECK CONDITION. */
  sense?: Buffer;
  /** Data for the initiator; the transport truncates it to the expected length and reports the residual. */
  dataIn?: Buffer;
  /**
   * Bytes of Data-Out the CDB called for (writes). When set, the transport
   * reports the residual against ExpectedDataTransferLength (RFC 7143 §11.4.5).
   */
  dataOutLength?: number;
}

/** The SCSI side of one iSCSI target: its LUNs and all task-set state. */
export interface ScsiTarget {
  readonly iqn: string;
  execute(command: ScsiCommand): Promise<ScsiResult>;
  /** The transport saw a new I_T nexus (a session reached full feature phase). */
  nexusAdded(nexus: Nexus): void;
  /** The session ended; unit attentions for it are dropped, registrations persist. */
  nexusRemoved(nexus: Nexus): void;
  /** LOGICAL UNIT RESET or TARGET WARM/COLD RESET from task management, after the transport aborted the tasks. */
  reset(scope: { kind: 'lun'; lun: number } | { kind: 'target' }, by: Nexus): void;
  /** Whether a LUN exists (task management answers "LUN does not exist" otherwise). */
  hasLun(lun: number): boolean;
  close(): Promise<void>;
}
