import { TriremeError } from '../../common/errors';
import { BlockDeviceError } from '../block-device';

/** Sense keys (SPC-4 §4.5.6, table 48). */
export const enum SenseKey {
  NoSense = 0x0,
  RecoveredError = 0x1,
  NotReady = 0x2,
  MediumError = 0x3,
  HardwareError = 0x4,
  IllegalRequest = 0x5,
  UnitAttention = 0x6,
  DataProtect = 0x7,
  AbortedCommand = 0xb,
  Miscompare = 0xe,
}

const SENSE_KEY_NAMES: Record<number, string> = {
  0x0: 'no_sense',
  0x1: 'recovered_error',
  0x2: 'not_ready',
  0x3: 'medium_error',
  0x4: 'hardware_error',
  0x5: 'illegal_request',
  0x6: 'unit_attention',
  0x7: 'data_protect',
  0xb: 'aborted_command',
  0xe: 'miscompare',
};

/** A stable lower-case name for a sense key: metric label and error code suffix. */
export function senseKeyName(key: number): string {
  return SENSE_KEY_NAMES[key] ?? `key_${key.toString(16)}`;
}

/** An additional sense code and qualifier (SPC-4 §4.5.6, table 49). */
export interface Asc {
  readonly asc: number;
  readonly ascq: number;
}

/** The ASC/ASCQ pairs Trireme reports; everything that builds sense data names one of these. */
export const ASC = {
  NoAdditionalSense: { asc: 0x00, ascq: 0x00 },
  NotReadyBecomingReady: { asc: 0x04, ascq: 0x01 },
  UnrecoveredReadError: { asc: 0x11, ascq: 0x00 },
  ParameterListLengthError: { asc: 0x1a, ascq: 0x00 },
  MiscompareDuringVerify: { asc: 0x1d, ascq: 0x00 },
  InvalidFieldInCommandInformationUnit: { asc: 0x0e, ascq: 0x03 },
  InvalidCommandOperationCode: { asc: 0x20, ascq: 0x00 },
  LbaOutOfRange: { asc: 0x21, ascq: 0x00 },
  InvalidFieldInCdb: { asc: 0x24, ascq: 0x00 },
  LogicalUnitNotSupported: { asc: 0x25, ascq: 0x00 },
  InvalidFieldInParameterList: { asc: 0x26, ascq: 0x00 },
  InvalidReleaseOfPersistentReservation: { asc: 0x26, ascq: 0x04 },
  LogicalUnitSoftwareWriteProtected: { asc: 0x27, ascq: 0x02 },
  SpaceAllocationFailedWriteProtect: { asc: 0x27, ascq: 0x07 },
  PowerOnResetOccurred: { asc: 0x29, ascq: 0x00 },
  BusDeviceResetOccurred: { asc: 0x29, ascq: 0x03 },
  ModeParametersChanged: { asc: 0x2a, ascq: 0x01 },
  ReservationsPreempted: { asc: 0x2a, ascq: 0x03 },
  ReservationsReleased: { asc: 0x2a, ascq: 0x04 },
  RegistrationsPreempted: { asc: 0x2a, ascq: 0x05 },
  CapacityDataChanged: { asc: 0x2a, ascq: 0x09 },
  SavingParametersNotSupported: { asc: 0x39, ascq: 0x00 },
  ReportedLunsDataChanged: { asc: 0x3f, ascq: 0x0e },
  InternalTargetFailure: { asc: 0x44, ascq: 0x00 },
} as const satisfies Record<string, Asc>;

/** Sense-key specific field pointer (SPC-4 §4.5.2.4.2): which CDB or parameter byte (and bit) was wrong. */
export interface FieldPointer {
  /** True when the byte is in the CDB, false for the parameter list (C/D bit). */
  readonly inCdb: boolean;
  readonly byte: number;
  readonly bit?: number;
}

export interface SenseDetails {
  /** INFORMATION field (VALID=1): e.g. the miscompare offset. */
  readonly information?: number;
  readonly field?: FieldPointer;
  /** Deferred error (response code 71h): reports the failure of an earlier command. */
  readonly deferred?: boolean;
}

export const FIXED_SENSE_LENGTH = 18;

/**
 * The one sense data builder: fixed format (SPC-4 §4.5.3), 18 bytes, because
 * Trireme reports D_SENSE=0 in the control mode page.
 */
export function buildSense(key: number, code: Asc, details: SenseDetails = {}): Buffer {
  const sense = Buffer.alloc(FIXED_SENSE_LENGTH);
  const valid = details.information !== undefined ? 0x80 : 0;
  sense[0] = valid | (details.deferred ? 0x71 : 0x70);
  sense[2] = key & 0x0f;
  if (details.information !== undefined) sense.writeUInt32BE(details.information >>> 0, 3);
  sense[7] = FIXED_SENSE_LENGTH - 8;
  sense[12] = code.asc;
  sense[13] = code.ascq;
  if (details.field) {
    // SKSV=1, C/D, BPV when a bit is named, BIT POINTER, FIELD POINTER (SPC-4 table 52).
    const { inCdb, byte, bit } = details.field;
    sense[15] = 0x80 | (inCdb ? 0x40 : 0) | (bit !== undefined ? 0x08 | (bit & 0x07) : 0);
    sense.writeUInt16BE(byte & 0xffff, 16);
  }
  return sense;
}

/** A command failure with a sense key and ASC/ASCQ; handlers throw it, the target turns it into CHECK CONDITION. */
export class ScsiError extends TriremeError {
  readonly key: number;
  readonly asc: number;
  readonly ascq: number;
  readonly details: SenseDetails;

  constructor(key: number, asc: number, ascq: number, info?: SenseDetails, options?: { cause?: unknown }) {
    super(`ERR_SCSI_${senseKeyName(key).toUpperCase()}`, `SCSI ${senseKeyName(key)} asc=0x${hex(asc)} ascq=0x${hex(ascq)}`, options);
    this.name = 'ScsiError';
    this.key = key;
    this.asc = asc;
    this.ascq = ascq;
    this.details = info ?? {};
  }

  static of(key: number, code: Asc, info?: SenseDetails, options?: { cause?: unknown }): ScsiError {
    return new ScsiError(key, code.asc, code.ascq, info, options);
  }

  sense(): Buffer {
    return buildSense(this.key, { asc: this.asc, ascq: this.ascq }, this.details);
  }
}

function hex(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** ILLEGAL REQUEST / INVALID FIELD IN CDB pointing at byte (and bit) of the CDB. */
export function invalidFieldInCdb(byte: number, bit?: number): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidFieldInCdb, { field: { inCdb: true, byte, bit } });
}

/** ILLEGAL REQUEST / INVALID FIELD IN PARAMETER LIST pointing at byte (and bit) of the Data-Out. */
export function invalidFieldInParameterList(byte: number, bit?: number): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidFieldInParameterList, { field: { inCdb: false, byte, bit } });
}

export function parameterListLengthError(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, ASC.ParameterListLengthError);
}

export function lbaOutOfRange(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, ASC.LbaOutOfRange);
}

export function invalidOperationCode(): ScsiError {
  return ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidCommandOperationCode, { field: { inCdb: true, byte: 0 } });
}

/** MISCOMPARE with the byte offset of the first difference in INFORMATION (SBC-3 §5.2, §5.24). */
export function miscompare(offset: number): ScsiError {
  return ScsiError.of(SenseKey.Miscompare, ASC.MiscompareDuringVerify, { information: offset });
}

/**
 * The one mapping from device failures to sense data.
 * - unavailable (too few RW replicas, DESIGN.md invariant 6): NOT READY / LOGICAL
 *   UNIT IS IN PROCESS OF BECOMING READY (04h/01h). Initiators retry that with a
 *   delay until their command timer runs out (Linux sd: ACTION_DELAYED_RETRY),
 *   which rides out a replica restart, yet a degraded write is never acked.
 *   04h/00h (cause not reportable) would fail the I/O at once; UNIT ATTENTION
 *   would be retried too but also consumed by unrelated commands.
 * - no-space: DATA PROTECT / SPACE ALLOCATION FAILED WRITE PROTECT (SBC-3 §4.7.3.7).
 * - medium: MEDIUM ERROR / UNRECOVERED READ ERROR.
 * - io and anything else: HARDWARE ERROR / INTERNAL TARGET FAILURE.
 */
export function deviceErrorToScsi(err: unknown): ScsiError {
  if (err instanceof ScsiError) return err;
  const kind = err instanceof BlockDeviceError ? err.kind : 'io';
  switch (kind) {
    case 'unavailable':
      return ScsiError.of(SenseKey.NotReady, ASC.NotReadyBecomingReady, undefined, { cause: err });
    case 'no-space':
      return ScsiError.of(SenseKey.DataProtect, ASC.SpaceAllocationFailedWriteProtect, undefined, { cause: err });
    case 'medium':
      return ScsiError.of(SenseKey.MediumError, ASC.UnrecoveredReadError, undefined, { cause: err });
    case 'io':
      return ScsiError.of(SenseKey.HardwareError, ASC.InternalTargetFailure, undefined, { cause: err });
  }
}
