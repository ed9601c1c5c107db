import { invalidFieldInCdb } from './sense';

/**
 * Field readers for CDBs and parameter lists. LBAs are 64-bit on the wire; a
 * value past Number.MAX_SAFE_INTEGER is returned as Infinity so the range
 * check reports LOGICAL BLOCK ADDRESS OUT OF RANGE instead of losing bits.
 */
export function readU64(buf: Buffer, offset: number): number {
  const value = buf.readBigUInt64BE(offset);
  return value > BigInt(Number.MAX_SAFE_INTEGER) ? Infinity : Number(value);
}

export function writeU64(buf: Buffer, offset: number, value: number | bigint): void {
  buf.writeBigUInt64BE(BigInt(value), offset);
}

/**
 * The ALLOCATION LENGTH rule (SPC-4 §4.2.5.6): return as much of the response
 * as fits and never report it as an error.
 */
export function truncate(data: Buffer, allocationLength: number): Buffer {
  return data.length <= allocationLength ? data : data.subarray(0, allocationLength);
}

/** Copies a string into a fixed-width, space-padded ASCII field (SPC-4 §4.4.1). */
export function writeAscii(buf: Buffer, offset: number, width: number, text: string): void {
  buf.fill(0x20, offset, offset + width);
  buf.write(text.slice(0, width), offset, 'ascii');
}

/** Rejects a CDB field that must be zero here because Trireme does not implement the feature. */
export function requireZero(cdb: Buffer, byte: number, mask: number): void {
  const bad = cdb[byte] & mask;
  if (bad !== 0) throw invalidFieldInCdb(byte, 31 - Math.clz32(bad));
}

/** A byte string padded with NULs to a multiple of four, NUL-terminated (SPC-4 §7.8.6.10 SCSI name string). */
export function nulPadded(text: string, minimum = 0): Buffer {
  const raw = Buffer.from(`${text}\0`, 'utf8');
  const length = Math.max(minimum, Math.ceil(raw.length / 4) * 4);
  const out = Buffer.alloc(length);
  raw.copy(out);
  return out;
}
