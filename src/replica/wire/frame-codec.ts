import { crc32c } from '@node-rs/crc32';
import { WireError, WireErrorCode } from './errors';
import {
  FLAG_RESPONSE,
  HEADER_SIZE,
  MAGIC,
  Status,
  VERSION,
  hasOnlyKnownFlags,
  isKnownOpcode,
  isKnownStatus,
  type FrameHeader,
  type OpcodeValue,
  type StatusValue,
} from './protocol';

/** Header fields a sender chooses; the lengths and CRCs are computed from the payload. */
export interface FrameFields {
  readonly opcode: OpcodeValue;
  readonly flags?: number;
  readonly status?: StatusValue;
  readonly requestId: number;
  readonly epoch?: number;
  readonly seq?: number;
  readonly offset?: number;
  readonly length?: number;
  /** CRC32C of the payload when the sender already has it (one payload sent to several replicas). */
  readonly payloadCrc?: number;
}

const EMPTY = Buffer.alloc(0);
const TWO_32 = 2 ** 32;

function writeU64(buf: Buffer, value: number, at: number): void {
  buf.writeUInt32BE(Math.floor(value / TWO_32), at);
  buf.writeUInt32BE(value >>> 0, at + 4);
}

function readU64(buf: Buffer, at: number, field: string): number {
  const value = buf.readUInt32BE(at) * TWO_32 + buf.readUInt32BE(at + 4);
  if (!Number.isSafeInteger(value)) throw new WireError(WireErrorCode.BadField, `${field} is not a safe integer`);
  return value;
}

function checkU64(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`${field} must be a non-negative safe integer, got ${value}`);
  return value;
}

function checkU32(value: number, field: string): number {
  if (!Number.isInteger(value) || value < 0 || value >= TWO_32) throw new RangeError(`${field} must be a 32-bit unsigned integer, got ${value}`);
  return value;
}

/**
 * Encodes a frame header for `payload`. The payload is not copied: the sender
 * writes the header and the payload back to back (corked, so one writev).
 * `requestId` overrides the one in `fields` (a client numbers its requests
 * without copying the caller's fields).
 */
export function encodeHeader(fields: FrameFields, payload: Buffer = EMPTY, requestId = fields.requestId): Buffer {
  const h = Buffer.allocUnsafe(HEADER_SIZE);
  h.writeUInt16BE(MAGIC, 0);
  h.writeUInt8(VERSION, 2);
  h.writeUInt8(fields.opcode, 3);
  h.writeUInt16BE(fields.flags ?? 0, 4);
  h.writeUInt16BE(fields.status ?? Status.Ok, 6);
  h.writeUInt32BE(checkU32(requestId, 'requestId'), 8);
  writeU64(h, checkU64(fields.epoch ?? 0, 'epoch'), 12);
  writeU64(h, checkU64(fields.seq ?? 0, 'seq'), 20);
  writeU64(h, checkU64(fields.offset ?? 0, 'offset'), 28);
  h.writeUInt32BE(checkU32(fields.length ?? 0, 'length'), 36);
  h.writeUInt32BE(payload.length, 40);
  h.writeUInt32BE(payload.length === 0 ? 0 : (fields.payloadCrc ?? crc32c(payload)), 44);
  h.writeUInt32BE(crc32c(h.subarray(0, 48)), 48);
  return h;
}

/** Encodes header and payload into one buffer (tests and small control frames). */
export function encodeFrame(fields: FrameFields, payload: Buffer = EMPTY): Buffer {
  return payload.length === 0 ? encodeHeader(fields, payload) : Buffer.concat([encodeHeader(fields, payload), payload]);
}

/**
 * Decodes and validates the HEADER_SIZE bytes at `buf[at..]`. The header CRC is
 * checked first, so every later check reads trusted bytes; the payload length
 * is checked against `maxPayload` before anything is buffered for it.
 */
export function decodeHeader(buf: Buffer, at: number, maxPayload: number): FrameHeader {
  if (buf.readUInt16BE(at) !== MAGIC) throw new WireError(WireErrorCode.BadMagic, 'bad frame magic');
  if (buf.readUInt8(at + 2) !== VERSION) throw new WireError(WireErrorCode.BadVersion, `unsupported protocol version ${buf.readUInt8(at + 2)}`);
  if (crc32c(buf.subarray(at, at + 48)) !== buf.readUInt32BE(at + 48)) throw new WireError(WireErrorCode.HeaderCrc, 'frame header CRC mismatch');
  const opcode = buf.readUInt8(at + 3);
  if (!isKnownOpcode(opcode)) throw new WireError(WireErrorCode.BadOpcode, `unknown opcode 0x${opcode.toString(16)}`);
  const flags = buf.readUInt16BE(at + 4);
  if (!hasOnlyKnownFlags(flags)) throw new WireError(WireErrorCode.BadFlags, `unknown flags 0x${flags.toString(16)}`);
  const status = buf.readUInt16BE(at + 6);
  if (!isKnownStatus(status) || ((flags & FLAG_RESPONSE) === 0 && status !== Status.Ok)) {
    throw new WireError(WireErrorCode.BadStatus, `invalid status ${status}`);
  }
  const payloadLength = buf.readUInt32BE(at + 40);
  if (payloadLength > maxPayload) throw new WireError(WireErrorCode.TooLarge, `payload of ${payloadLength} bytes exceeds the limit of ${maxPayload}`);
  const payloadCrc = buf.readUInt32BE(at + 44);
  if (payloadLength === 0 && payloadCrc !== 0) throw new WireError(WireErrorCode.BadField, 'payload CRC set without a payload');
  return {
    opcode,
    flags,
    status,
    requestId: buf.readUInt32BE(at + 8),
    epoch: readU64(buf, at + 12, 'epoch'),
    seq: readU64(buf, at + 20, 'seq'),
    offset: readU64(buf, at + 28, 'offset'),
    length: buf.readUInt32BE(at + 36),
    payloadLength,
    payloadCrc,
  };
}

/** Whether `payload` matches the CRC its header announced (end-to-end integrity). */
export function payloadCrcMatches(header: FrameHeader, payload: Buffer): boolean {
  return payload.length === 0 ? header.payloadCrc === 0 : crc32c(payload) === header.payloadCrc;
}
