import { crc32c } from '@node-rs/crc32';
import { BLOCK_SIZE } from '../store-types';

/**
 * On-disk format of segment files. Codecs do no I/O (STYLE.md rule 3).
 *
 * Segment file: a 64-byte header, then records back to back.
 * Record: a 48-byte header, then a payload:
 *   write    count x (crc32c u32 + 4096 data bytes): one CRC per block so a 4k
 *            read inside a 1 MiB record verifies only what it returns.
 *   unmap    nothing (count = blocks)
 *   snapshot / revert   the snapshot name in UTF-8 (count = bytes)
 *   epoch    nothing
 * Header CRC covers header bytes 8..47 and any non-block payload; each block CRC
 * is seeded from the block's address (LBA), which a reader knows from the index
 * without reading the record header: a block written to or read from the wrong
 * place fails its check.
 */
export const SEGMENT_MAGIC = Buffer.from('TRIRSEG\0', 'latin1');
export const SEGMENT_VERSION = 1;
export const SEGMENT_HEADER_SIZE = 64;
export const RECORD_MAGIC = 0x524c5254; // 'TRLR'
export const RECORD_VERSION = 1;
export const RECORD_HEADER_SIZE = 48;
export const BLOCK_SLOT = BLOCK_SIZE + 4;
/** Block index within a record is 16 bits in the block index (block-index.ts). */
export const MAX_RECORD_BLOCKS = 0xffff;
export const MAX_NAME_BYTES = 1024;

export const RecordType = {
  Write: 1,
  Unmap: 2,
  Snapshot: 3,
  Epoch: 4,
  /** Head replaced by a snapshot's content (revertToSnapshot). */
  Revert: 5,
} as const;
export type RecordTypeValue = (typeof RecordType)[keyof typeof RecordType];

export const SegmentKind = { Live: 0, Compact: 1 } as const;

export interface SegmentHeader {
  readonly segIdx: number;
  readonly gen: number;
  readonly kind: number;
}

export interface RecordHeader {
  readonly type: RecordTypeValue;
  readonly count: number;
  readonly epoch: number;
  readonly seq: number;
  readonly lba: number;
  readonly totalLen: number;
  readonly crc: number;
}

export function encodeSegmentHeader(h: SegmentHeader): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_SIZE);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32LE(SEGMENT_VERSION, 8);
  b.writeUInt32LE(SEGMENT_HEADER_SIZE, 12);
  b.writeUInt32LE(h.segIdx, 16);
  b.writeUInt8(h.kind, 20);
  b.writeDoubleLE(h.gen, 24);
  b.writeUInt32LE(crc32c(b.subarray(0, 60)), 60);
  return b;
}

/** Returns the header, or a reason string when the bytes are not a valid segment header. */
export function decodeSegmentHeader(b: Buffer): SegmentHeader | string {
  if (b.length < SEGMENT_HEADER_SIZE) return 'short segment header';
  if (!b.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'bad segment magic';
  if (b.readUInt32LE(60) !== crc32c(b.subarray(0, 60))) return 'bad segment header crc';
  const version = b.readUInt32LE(8);
  if (version !== SEGMENT_VERSION) return `unsupported segment version ${version}`;
  return { segIdx: b.readUInt32LE(16), kind: b.readUInt8(20), gen: b.readDoubleLE(24) };
}

export function recordLength(type: RecordTypeValue, count: number): number {
  if (type === RecordType.Write) return RECORD_HEADER_SIZE + count * BLOCK_SLOT;
  if (type === RecordType.Snapshot || type === RecordType.Revert) return RECORD_HEADER_SIZE + count;
  return RECORD_HEADER_SIZE;
}

function writeHeader(b: Buffer, type: RecordTypeValue, count: number, epoch: number, seq: number, lba: number, payload?: Buffer): number {
  b.writeUInt32LE(RECORD_MAGIC, 0);
  b.writeUInt8(type, 8);
  b.writeUInt8(RECORD_VERSION, 9);
  b.writeUInt16LE(0, 10);
  b.writeUInt32LE(count, 12);
  b.writeDoubleLE(epoch, 16);
  b.writeDoubleLE(seq, 24);
  b.writeDoubleLE(lba, 32);
  b.writeUInt32LE(recordLength(type, count), 40);
  b.writeUInt32LE(0, 44);
  let crc = crc32c(b.subarray(8, RECORD_HEADER_SIZE));
  if (payload) crc = crc32c(payload, crc);
  b.writeUInt32LE(crc, 4);
  return crc;
}

/**
 * A write record; copies `data` (the caller's buffer may be reused once this returns).
 * `alloc` gives the memory for it (a BufferPool's take), so codecs still do no I/O.
 */
export function encodeWrite(epoch: number, seq: number, lba: number, data: Buffer, alloc: (n: number) => Buffer = Buffer.allocUnsafe): Buffer {
  const count = data.length / BLOCK_SIZE;
  const out = alloc(recordLength(RecordType.Write, count));
  writeHeader(out, RecordType.Write, count, epoch, seq, lba);
  for (let i = 0; i < count; i++) {
    const block = data.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE);
    const at = RECORD_HEADER_SIZE + i * BLOCK_SLOT;
    out.writeUInt32LE(crc32c(block, blockSeed(lba + i)), at);
    block.copy(out, at + 4);
  }
  return out;
}

export function encodeUnmap(epoch: number, seq: number, lba: number, blocks: number): Buffer {
  const out = Buffer.alloc(RECORD_HEADER_SIZE);
  writeHeader(out, RecordType.Unmap, blocks, epoch, seq, lba);
  return out;
}

export function encodeNamed(type: typeof RecordType.Snapshot | typeof RecordType.Revert, epoch: number, seq: number, name: string): Buffer {
  const payload = Buffer.from(name, 'utf8');
  const out = Buffer.alloc(RECORD_HEADER_SIZE + payload.length);
  writeHeader(out, type, payload.length, epoch, seq, 0, payload);
  payload.copy(out, RECORD_HEADER_SIZE);
  return out;
}

export function encodeEpoch(epoch: number, seq: number): Buffer {
  const out = Buffer.alloc(RECORD_HEADER_SIZE);
  writeHeader(out, RecordType.Epoch, 0, epoch, seq, 0);
  return out;
}

/**
 * Decodes a record header at the start of `b` (at least RECORD_HEADER_SIZE bytes).
 * Returns a reason string for anything that is not a well-formed header; the
 * payload of named records is checked by verifyNamedPayload.
 */
export function decodeRecordHeader(b: Buffer): RecordHeader | string {
  if (b.length < RECORD_HEADER_SIZE) return 'short record header';
  if (b.readUInt32LE(0) !== RECORD_MAGIC) return 'bad record magic';
  const type = b.readUInt8(8);
  if (type < RecordType.Write || type > RecordType.Revert) return `unknown record type ${type}`;
  if (b.readUInt8(9) !== RECORD_VERSION) return 'unsupported record version';
  const count = b.readUInt32LE(12);
  const totalLen = b.readUInt32LE(40);
  if (totalLen !== recordLength(type as RecordTypeValue, count)) return 'record length mismatch';
  const crc = b.readUInt32LE(4);
  const named = type === RecordType.Snapshot || type === RecordType.Revert;
  if (!named && crc !== crc32c(b.subarray(8, RECORD_HEADER_SIZE))) return 'bad record header crc';
  return {
    type: type as RecordTypeValue,
    count,
    epoch: b.readDoubleLE(16),
    seq: b.readDoubleLE(24),
    lba: b.readDoubleLE(32),
    totalLen,
    crc,
  };
}

/** Checks the CRC of a snapshot/revert record (header plus name); returns the name or null. */
export function verifyNamedPayload(header: Buffer, payload: Buffer): string | null {
  const crc = crc32c(payload, crc32c(header.subarray(8, RECORD_HEADER_SIZE)));
  if (crc !== header.readUInt32LE(4)) return null;
  return payload.toString('utf8');
}

export function blockSeed(lba: number): number {
  return Math.imul((lba % 0x100000000) >>> 0, 0x9e3779b1) >>> 0;
}

/** Verifies one block slot (crc + data) of a write record at `lba`; `slot` holds BLOCK_SLOT bytes from `at`. */
export function verifyBlock(slot: Buffer, at: number, lba: number): boolean {
  return slot.readUInt32LE(at) === crc32c(slot.subarray(at + 4, at + BLOCK_SLOT), blockSeed(lba));
}

/** Verifies a block's data against the CRC stored before it in its slot. */
export function verifyBlockData(data: Buffer, crc: number, lba: number): boolean {
  return crc === crc32c(data, blockSeed(lba));
}
