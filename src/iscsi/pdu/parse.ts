import { INVALID_PDU, PduError } from './errors';
import type { RawPdu } from './framer';
import { decodeLun } from './lun';
import { InitiatorOpcode, RejectReason } from './opcodes';
import type { TaskAttribute } from '../scsi/types';

/**
 * One small parse function per initiator opcode (RFC 7143 §11). Fields keep
 * their RFC names in lowerCamel. Parsers check structure only; sequence
 * numbers and tags are checked by the session, which knows the window.
 */

export interface NopOutPdu {
  readonly opcode: InitiatorOpcode.NopOut;
  readonly immediate: boolean;
  readonly lun: number;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface ScsiCommandPdu {
  readonly opcode: InitiatorOpcode.ScsiCommand;
  readonly immediate: boolean;
  readonly final: boolean;
  readonly read: boolean;
  readonly write: boolean;
  readonly taskAttribute: TaskAttribute;
  readonly lun: number;
  readonly itt: number;
  readonly expectedDataTransferLength: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  /** The full CDB: the 16 header bytes plus any Extended CDB AHS. */
  readonly cdb: Buffer;
  readonly bidiReadLength?: number;
  /** Immediate data. */
  readonly data: Buffer;
}

export interface TaskManagementPdu {
  readonly opcode: InitiatorOpcode.TaskManagementRequest;
  readonly immediate: boolean;
  readonly function: number;
  readonly lun: number;
  readonly itt: number;
  readonly referencedTaskTag: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly refCmdSN: number;
}

export interface LoginRequestPdu {
  readonly opcode: InitiatorOpcode.LoginRequest;
  readonly transit: boolean;
  readonly continue: boolean;
  readonly csg: number;
  readonly nsg: number;
  readonly versionMax: number;
  readonly versionMin: number;
  /** ISID as 12 hex digits. */
  readonly isid: string;
  readonly tsih: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface TextRequestPdu {
  readonly opcode: InitiatorOpcode.TextRequest;
  readonly immediate: boolean;
  readonly final: boolean;
  readonly continue: boolean;
  readonly itt: number;
  readonly ttt: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
  readonly data: Buffer;
}

export interface DataOutPdu {
  readonly opcode: InitiatorOpcode.DataOut;
  readonly final: boolean;
  readonly lun: number;
  readonly itt: number;
  readonly ttt: number;
  readonly expStatSN: number;
  readonly dataSN: number;
  readonly bufferOffset: number;
  readonly data: Buffer;
}

export interface LogoutRequestPdu {
  readonly opcode: InitiatorOpcode.LogoutRequest;
  readonly immediate: boolean;
  readonly reason: number;
  readonly itt: number;
  readonly cid: number;
  readonly cmdSN: number;
  readonly expStatSN: number;
}

export interface SnackPdu {
  readonly opcode: InitiatorOpcode.SnackRequest;
  readonly itt: number;
}

export type InitiatorPdu = NopOutPdu | ScsiCommandPdu | TaskManagementPdu | LoginRequestPdu | TextRequestPdu | DataOutPdu | LogoutRequestPdu | SnackPdu;

const ATTRIBUTES: Record<number, TaskAttribute> = { 0: 'untagged', 1: 'simple', 2: 'ordered', 3: 'head-of-queue', 4: 'aca' };

const invalid = (raw: RawPdu, message: string, reason = RejectReason.InvalidPduField): PduError =>
  new PduError(INVALID_PDU, message, { rejectReason: reason, header: raw.bhs });

const immediateBit = (bhs: Buffer): boolean => (bhs[0] & 0x40) !== 0;
const finalBit = (bhs: Buffer): boolean => (bhs[1] & 0x80) !== 0;

function noData(raw: RawPdu, name: string): void {
  if (raw.data.length > 0) throw invalid(raw, `${name} carries no data segment`);
}

export function parseNopOut(raw: RawPdu): NopOutPdu {
  const b = raw.bhs;
  if (!finalBit(b)) throw invalid(raw, 'NOP-Out without the F bit');
  return {
    opcode: InitiatorOpcode.NopOut,
    immediate: immediateBit(b),
    lun: decodeLun(b),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: raw.data,
  };
}

/** AHS walk (RFC 7143 §11.2.2): Extended CDB (type 1) and Bidirectional Read Length (type 2). */
function parseCommandAhs(raw: RawPdu): { extraCdb?: Buffer; bidiReadLength?: number } {
  const out: { extraCdb?: Buffer; bidiReadLength?: number } = {};
  let at = 0;
  while (at < raw.ahs.length) {
    if (at + 4 > raw.ahs.length) throw invalid(raw, 'truncated AHS');
    const length = raw.ahs.readUInt16BE(at);
    const type = raw.ahs[at + 2];
    // AHSLength counts the bytes after the type byte, the reserved byte included.
    const end = at + 3 + length;
    if (length === 0 || end > raw.ahs.length) throw invalid(raw, 'AHS length out of range');
    if (type === 1) out.extraCdb = raw.ahs.subarray(at + 4, end);
    else if (type === 2 && length === 5) out.bidiReadLength = raw.ahs.readUInt32BE(at + 4);
    else throw invalid(raw, `unsupported AHS type ${type}`);
    at += (3 + length + 3) & ~3;
  }
  return out;
}

const NO_AHS: { extraCdb?: Buffer; bidiReadLength?: number } = {};

export function parseScsiCommand(raw: RawPdu): ScsiCommandPdu {
  const b = raw.bhs;
  const attribute = ATTRIBUTES[b[1] & 0x07];
  if (!attribute) throw invalid(raw, `invalid task attribute ${b[1] & 0x07}`);
  const ahs = raw.ahs.length > 0 ? parseCommandAhs(raw) : NO_AHS;
  // A view of the header when the CDB fits in it (every READ and WRITE): no copy per command.
  const baseCdb = b.subarray(32, 48);
  const cdb = ahs.extraCdb ? Buffer.concat([baseCdb, ahs.extraCdb]) : baseCdb;
  const write = (b[1] & 0x20) !== 0;
  if (!write && raw.data.length > 0) throw invalid(raw, 'immediate data without the W bit', RejectReason.ProtocolError);
  return {
    opcode: InitiatorOpcode.ScsiCommand,
    immediate: immediateBit(b),
    final: finalBit(b),
    read: (b[1] & 0x40) !== 0,
    write,
    taskAttribute: attribute,
    lun: decodeLun(b),
    itt: b.readUInt32BE(16),
    expectedDataTransferLength: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    cdb,
    bidiReadLength: ahs.bidiReadLength,
    data: raw.data,
  };
}

export function parseTaskManagement(raw: RawPdu): TaskManagementPdu {
  const b = raw.bhs;
  if (!finalBit(b)) throw invalid(raw, 'task management request without the F bit');
  noData(raw, 'task management request');
  return {
    opcode: InitiatorOpcode.TaskManagementRequest,
    immediate: immediateBit(b),
    function: b[1] & 0x7f,
    lun: decodeLun(b),
    itt: b.readUInt32BE(16),
    referencedTaskTag: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    refCmdSN: b.readUInt32BE(32),
  };
}

export function parseLoginRequest(raw: RawPdu): LoginRequestPdu {
  const b = raw.bhs;
  return {
    opcode: InitiatorOpcode.LoginRequest,
    transit: (b[1] & 0x80) !== 0,
    continue: (b[1] & 0x40) !== 0,
    csg: (b[1] >> 2) & 0x03,
    nsg: b[1] & 0x03,
    versionMax: b[2],
    versionMin: b[3],
    isid: b.subarray(8, 14).toString('hex'),
    tsih: b.readUInt16BE(14),
    itt: b.readUInt32BE(16),
    cid: b.readUInt16BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: raw.data,
  };
}

export function parseTextRequest(raw: RawPdu): TextRequestPdu {
  const b = raw.bhs;
  const final = finalBit(b);
  const cont = (b[1] & 0x40) !== 0;
  if (final && cont) throw invalid(raw, 'text request with both F and C bits', RejectReason.ProtocolError);
  return {
    opcode: InitiatorOpcode.TextRequest,
    immediate: immediateBit(b),
    final,
    continue: cont,
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
    data: raw.data,
  };
}

export function parseDataOut(raw: RawPdu): DataOutPdu {
  const b = raw.bhs;
  return {
    opcode: InitiatorOpcode.DataOut,
    final: finalBit(b),
    lun: decodeLun(b),
    itt: b.readUInt32BE(16),
    ttt: b.readUInt32BE(20),
    expStatSN: b.readUInt32BE(28),
    dataSN: b.readUInt32BE(36),
    bufferOffset: b.readUInt32BE(40),
    data: raw.data,
  };
}

export function parseLogoutRequest(raw: RawPdu): LogoutRequestPdu {
  const b = raw.bhs;
  if (!finalBit(b)) throw invalid(raw, 'logout request without the F bit');
  noData(raw, 'logout request');
  return {
    opcode: InitiatorOpcode.LogoutRequest,
    immediate: immediateBit(b),
    reason: b[1] & 0x7f,
    itt: b.readUInt32BE(16),
    cid: b.readUInt16BE(20),
    cmdSN: b.readUInt32BE(24),
    expStatSN: b.readUInt32BE(28),
  };
}

export function parseSnack(raw: RawPdu): SnackPdu {
  return { opcode: InitiatorOpcode.SnackRequest, itt: raw.bhs.readUInt32BE(16) };
}

/** Dispatches on the opcode; an unknown opcode is answered with Reject "command not supported". */
export function parsePdu(raw: RawPdu): InitiatorPdu {
  const opcode = raw.bhs[0] & 0x3f;
  switch (opcode) {
    case InitiatorOpcode.NopOut:
      return parseNopOut(raw);
    case InitiatorOpcode.ScsiCommand:
      return parseScsiCommand(raw);
    case InitiatorOpcode.TaskManagementRequest:
      return parseTaskManagement(raw);
    case InitiatorOpcode.LoginRequest:
      return parseLoginRequest(raw);
    case InitiatorOpcode.TextRequest:
      return parseTextRequest(raw);
    case InitiatorOpcode.DataOut:
      return parseDataOut(raw);
    case InitiatorOpcode.LogoutRequest:
      return parseLogoutRequest(raw);
    case InitiatorOpcode.SnackRequest:
      return parseSnack(raw);
    default:
      throw invalid(raw, `unknown opcode 0x${opcode.toString(16)}`, RejectReason.CommandNotSupported);
  }
}
