import { digestOf, pad4 } from './framer';
import { encodeLun } from './lun';
import { BHS_LENGTH, RESERVED_TAG, TargetOpcode } from './opcodes';

/**
 * Builders for target PDUs (RFC 7143 §11). Each returns the 48-byte BHS and the
 * data segment; `frame` adds padding and digests. No I/O.
 */
export interface OutPdu {
  readonly bhs: Buffer;
  readonly data?: Buffer;
}

/** The sequence numbers every target PDU carries at bytes 24..35. */
export interface Sequence {
  statSN: number;
  expCmdSN: number;
  maxCmdSN: number;
}

function header(opcode: TargetOpcode, flags: number, itt: number, dataLength: number): Buffer {
  // From Buffer's shared pool (a slice, not an ArrayBuffer per header), zeroed by hand.
  const bhs = Buffer.allocUnsafe(BHS_LENGTH).fill(0);
  bhs[0] = opcode;
  bhs[1] = flags;
  bhs.writeUIntBE(dataLength, 5, 3);
  bhs.writeUInt32BE(itt >>> 0, 16);
  return bhs;
}

function sequence(bhs: Buffer, seq: Sequence, statSN = seq.statSN): void {
  bhs.writeUInt32BE(statSN >>> 0, 24);
  bhs.writeUInt32BE(seq.expCmdSN >>> 0, 28);
  bhs.writeUInt32BE(seq.maxCmdSN >>> 0, 32);
}

const ZERO_PAD = Buffer.alloc(4);

/** Wire bytes of one PDU: BHS, header digest, data, padding, data digest (RFC 7143 §11.2). */
export function frame(pdu: OutPdu, digests: { header: boolean; data: boolean }): Buffer[] {
  const parts: Buffer[] = [pdu.bhs];
  if (digests.header) {
    const d = Buffer.allocUnsafe(4);
    d.writeUInt32LE(digestOf(pdu.bhs), 0);
    parts.push(d);
  }
  const data = pdu.data;
  if (data && data.length > 0) {
    parts.push(data);
    const padding = pad4(data.length) - data.length;
    const pad = ZERO_PAD.subarray(0, padding);
    if (padding) parts.push(pad);
    if (digests.data) {
      const d = Buffer.allocUnsafe(4);
      d.writeUInt32LE(digestOf(data, pad), 0);
      parts.push(d);
    }
  }
  return parts;
}

export function loginResponse(fields: {
  transit: boolean;
  continue?: boolean;
  csg: number;
  nsg: number;
  isid: string;
  tsih: number;
  itt: number;
  status: number;
  seq: Sequence;
  data: Buffer;
}): OutPdu {
  const flags = (fields.transit ? 0x80 : 0) | (fields.continue ? 0x40 : 0) | ((fields.csg & 3) << 2) | (fields.transit ? fields.nsg & 3 : 0);
  const bhs = header(TargetOpcode.LoginResponse, flags, fields.itt, fields.data.length);
  // VersionMax and VersionActive are both 0x00 (RFC 7143 §11.13.3).
  Buffer.from(fields.isid.padStart(12, '0').slice(0, 12), 'hex').copy(bhs, 8);
  bhs.writeUInt16BE(fields.tsih, 14);
  sequence(bhs, fields.seq);
  bhs[36] = fields.status >> 8;
  bhs[37] = fields.status & 0xff;
  return { bhs, data: fields.data };
}

export function textResponse(fields: { final: boolean; continue: boolean; itt: number; ttt: number; seq: Sequence; data: Buffer }): OutPdu {
  const bhs = header(TargetOpcode.TextResponse, (fields.final ? 0x80 : 0) | (fields.continue ? 0x40 : 0), fields.itt, fields.data.length);
  bhs.writeUInt32BE(fields.ttt >>> 0, 20);
  sequence(bhs, fields.seq);
  return { bhs, data: fields.data };
}

export function nopIn(fields: { lun: number; itt: number; ttt: number; seq: Sequence; data?: Buffer }): OutPdu {
  const bhs = header(TargetOpcode.NopIn, 0x80, fields.itt, fields.data?.length ?? 0);
  encodeLun(fields.lun, bhs);
  bhs.writeUInt32BE(fields.ttt >>> 0, 20);
  sequence(bhs, fields.seq);
  return { bhs, data: fields.data };
}

export interface Residual {
  overflow: boolean;
  underflow: boolean;
  count: number;
}

const residualFlags = (r: Residual): number => (r.overflow ? 0x04 : 0) | (r.underflow ? 0x02 : 0);

/** SCSI Response (RFC 7143 §11.4): sense data carries its 2-byte SenseLength prefix (§11.4.7.2). */
export function scsiResponse(fields: { itt: number; status: number; sense?: Buffer; residual: Residual; seq: Sequence; expDataSN: number; targetFailure?: boolean }): OutPdu {
  let data: Buffer | undefined;
  if (fields.sense && fields.sense.length > 0) {
    data = Buffer.allocUnsafe(2 + fields.sense.length);
    data.writeUInt16BE(fields.sense.length, 0);
    fields.sense.copy(data, 2);
  }
  const bhs = header(TargetOpcode.ScsiResponse, 0x80 | residualFlags(fields.residual), fields.itt, data?.length ?? 0);
  bhs[2] = fields.targetFailure ? 0x01 : 0x00;
  bhs[3] = fields.status;
  sequence(bhs, fields.seq);
  bhs.writeUInt32BE(fields.expDataSN >>> 0, 36);
  bhs.writeUInt32BE(fields.residual.count >>> 0, 44);
  return { bhs, data };
}

/**
 * SCSI Data-In (RFC 7143 §11.7). With `status` the S bit collapses the SCSI
 * Response into this PDU (§11.7.1); StatSN is then meaningful.
 */
export function dataIn(fields: {
  final: boolean;
  lun: number;
  itt: number;
  dataSN: number;
  bufferOffset: number;
  data: Buffer;
  seq: Sequence;
  status?: { status: number; residual: Residual };
}): OutPdu {
  const status = fields.status;
  const flags = (fields.final ? 0x80 : 0) | (status ? 0x01 | residualFlags(status.residual) : 0);
  const bhs = header(TargetOpcode.DataIn, flags, fields.itt, fields.data.length);
  encodeLun(fields.lun, bhs);
  bhs.writeUInt32BE(RESERVED_TAG, 20);
  if (status) bhs[3] = status.status;
  sequence(bhs, fields.seq, status ? fields.seq.statSN : 0);
  bhs.writeUInt32BE(fields.dataSN >>> 0, 36);
  bhs.writeUInt32BE(fields.bufferOffset >>> 0, 40);
  if (status) bhs.writeUInt32BE(status.residual.count >>> 0, 44);
  return { bhs, data: fields.data };
}

/** Ready To Transfer (RFC 7143 §11.8): StatSN is the next one, not advanced. */
export function r2t(fields: { lun: number; itt: number; ttt: number; seq: Sequence; r2tSN: number; bufferOffset: number; desiredLength: number }): OutPdu {
  const bhs = header(TargetOpcode.R2t, 0x80, fields.itt, 0);
  encodeLun(fields.lun, bhs);
  bhs.writeUInt32BE(fields.ttt >>> 0, 20);
  sequence(bhs, fields.seq);
  bhs.writeUInt32BE(fields.r2tSN >>> 0, 36);
  bhs.writeUInt32BE(fields.bufferOffset >>> 0, 40);
  bhs.writeUInt32BE(fields.desiredLength >>> 0, 44);
  return { bhs };
}

export function taskManagementResponse(fields: { itt: number; response: number; seq: Sequence }): OutPdu {
  const bhs = header(TargetOpcode.TaskManagementResponse, 0x80, fields.itt, 0);
  bhs[2] = fields.response;
  sequence(bhs, fields.seq);
  return { bhs };
}

export function logoutResponse(fields: { itt: number; response: number; seq: Sequence; time2Wait: number; time2Retain: number }): OutPdu {
  const bhs = header(TargetOpcode.LogoutResponse, 0x80, fields.itt, 0);
  bhs[2] = fields.response;
  sequence(bhs, fields.seq);
  bhs.writeUInt16BE(fields.time2Wait, 40);
  bhs.writeUInt16BE(fields.time2Retain, 42);
  return { bhs };
}

/** Asynchronous Message (RFC 7143 §11.9); ITT is reserved (0xffffffff). */
export function asyncMessage(fields: { event: number; seq: Sequence; parameter1?: number; parameter2?: number; parameter3?: number }): OutPdu {
  const bhs = header(TargetOpcode.AsyncMessage, 0x80, RESERVED_TAG, 0);
  sequence(bhs, fields.seq);
  bhs[36] = fields.event;
  bhs.writeUInt16BE(fields.parameter1 ?? 0, 38);
  bhs.writeUInt16BE(fields.parameter2 ?? 0, 40);
  bhs.writeUInt16BE(fields.parameter3 ?? 0, 42);
  return { bhs };
}

/** Reject (RFC 7143 §11.17): the data segment is the rejected PDU's header. */
export function reject(fields: { reason: number; header: Buffer; seq: Sequence }): OutPdu {
  const data = Buffer.from(fields.header.subarray(0, BHS_LENGTH));
  const bhs = header(TargetOpcode.Reject, 0x80, RESERVED_TAG, data.length);
  bhs[2] = fields.reason;
  sequence(bhs, fields.seq);
  return { bhs, data };
}
