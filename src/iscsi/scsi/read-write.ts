import type { CommandContext, CommandSpec } from './command-table';
import { readU64 } from './cdb';
import type { LogicalUnit } from './logical-unit';
import { ASC, ScsiError, SenseKey, deviceErrorToScsi, invalidFieldInCdb } from './sense';

const CONTROL = 0x00;
/** DPO (ignored: there is no cache to bypass), FUA, FUA_NV (obsolete, accepted). */
const RW_FLAGS = 0x1a;
const GROUP = 0x1f;

/** Where a READ/WRITE/VERIFY CDB keeps its LBA and length, by CDB size (SBC-3 §5.7-5.13, §5.31-5.36). */
export interface BlockRange {
  readonly lba: number;
  readonly count: number;
  /** Byte offset of the length field, for field pointers. */
  readonly lengthByte: number;
}

export function decodeRange(cdb: Buffer): BlockRange {
  switch (cdb[0] >> 5) {
    case 0: // 6-byte: 21-bit LBA; a transfer length of 0 means 256 blocks (SBC-3 §5.7)
      return { lba: ((cdb[1] & 0x1f) << 16) | cdb.readUInt16BE(2), count: cdb[4] === 0 ? 256 : cdb[4], lengthByte: 4 };
    case 1:
    case 2:
      return { lba: cdb.readUInt32BE(2), count: cdb.readUInt16BE(7), lengthByte: 7 };
    case 5:
      return { lba: cdb.readUInt32BE(2), count: cdb.readUInt32BE(6), lengthByte: 6 };
    default:
      return { lba: readU64(cdb, 2), count: cdb.readUInt32BE(10), lengthByte: 10 };
  }
}

/** FUA bit (SBC-3 §5.8): byte 1 bit 3 in every CDB size but 6. */
export function fuaOf(cdb: Buffer): boolean {
  return cdb[0] >> 5 !== 0 && (cdb[1] & 0x08) !== 0;
}

/** Range and MAXIMUM TRANSFER LENGTH checks shared by reads, writes and verifies. */
export function checkTransfer(lu: LogicalUnit, range: BlockRange): void {
  lu.checkRange(range.lba, range.count);
  if (range.count > lu.limits.maxTransferBlocks) throw invalidFieldInCdb(range.lengthByte);
}

/**
 * The Data-Out a write stores, when the initiator's ExpectedDataTransferLength
 * and the CDB disagree (RFC 7143 §11.4.5.1, the FCP-4 §9.4.2 rules that
 * libiscsi checks): extra Data-Out is ignored; a short one that still holds
 * whole blocks is written as far as it goes, and the transport reports the
 * overflow residual so the initiator knows. A short one ending inside a block
 * cannot be stored without inventing data: INVALID FIELD IN COMMAND
 * INFORMATION UNIT, nothing written.
 */
export function writableDataOut(ctx: CommandContext, bytes: number, blockSize: number): Buffer {
  const data = ctx.command.dataOut ?? Buffer.alloc(0);
  if (data.length >= bytes) return data.length === bytes ? data : data.subarray(0, bytes);
  if (data.length % blockSize !== 0) throw ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidFieldInCommandInformationUnit);
  return data;
}

/** Data-Out that must be complete (compare data): a short one is INVALID FIELD IN COMMAND INFORMATION UNIT. */
export function takeDataOut(ctx: CommandContext, bytes: number): Buffer {
  const data = ctx.command.dataOut;
  if (bytes === 0) return Buffer.alloc(0);
  if (!data || data.length < bytes) throw ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidFieldInCommandInformationUnit);
  return data.length === bytes ? data : data.subarray(0, bytes);
}

/**
 * For commands whose Data-Out size is fixed by the CDB in a way that a
 * mismatch means a confused initiator (WRITE SAME, COMPARE AND WRITE), the
 * Data-Out must be exactly that size.
 */
export function exactDataOut(ctx: CommandContext, bytes: number, lengthByte: number): Buffer {
  const data = ctx.command.dataOut ?? Buffer.alloc(0);
  if (data.length !== bytes) throw invalidFieldInCdb(lengthByte);
  return data;
}

/** Data-Out bytes a READ/WRITE-shaped CDB calls for, for the transport's residual (RFC 7143 §11.4.5). */
export function rangeDataOut(cdb: Buffer, blockSize: number): number {
  return decodeRange(cdb).count * blockSize;
}

/** Runs `body` with the range locked against overlapping writes (COMPARE AND WRITE atomicity). */
export async function withRange<T>(lu: LogicalUnit, lba: number, count: number, body: () => Promise<T>): Promise<T> {
  const release = await lu.rangeLock.acquire(lba, count);
  try {
    return await body();
  } catch (err) {
    throw deviceErrorToScsi(err);
  } finally {
    release();
  }
}

async function read(ctx: CommandContext): Promise<Buffer | void> {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  checkTransfer(lu, range);
  if (range.count === 0) return;
  try {
    return await lu.device.read(range.lba * lu.blockSize, range.count * lu.blockSize);
  } catch (err) {
    throw deviceErrorToScsi(err);
  }
}

async function write(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  checkTransfer(lu, range);
  const data = writableDataOut(ctx, range.count * lu.blockSize, lu.blockSize);
  if (data.length === 0) return;
  await withRange(lu, range.lba, range.count, () => lu.device.write(range.lba * lu.blockSize, data, { fua: fuaOf(cdb) }));
}

/**
 * SYNCHRONIZE CACHE(10/16) (SBC-3 §5.22-5.23): flushes the whole device (the
 * range only has to be valid). With IMMED=1 GOOD is returned once the CDB is
 * checked; a later failure is reported as a deferred error to this nexus.
 */
async function synchronizeCache(ctx: CommandContext): Promise<void> {
  const { lu, cdb, command } = ctx;
  const sixteen = cdb[0] === 0x91;
  const lba = sixteen ? readU64(cdb, 2) : cdb.readUInt32BE(2);
  const count = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7);
  lu.checkRange(lba, count);
  const immediate = (cdb[1] & 0x02) !== 0;
  const flush = lu.device.flush();
  if (immediate) {
    flush.catch((err: unknown) => {
      const e = deviceErrorToScsi(err);
      lu.unitAttentions.addDeferred(command.nexus.id, e.key, { asc: e.asc, ascq: e.ascq });
    });
    return;
  }
  try {
    await flush;
  } catch (err) {
    throw deviceErrorToScsi(err);
  }
}

function rw(name: string, opcode: number, handler: (ctx: CommandContext) => Promise<Buffer | void>, isRead: boolean): CommandSpec {
  const group = opcode >> 5;
  let usage: number[];
  if (group === 0) usage = [opcode, 0x1f, 0xff, 0xff, 0xff, CONTROL];
  else if (group === 1) usage = [opcode, RW_FLAGS, 0xff, 0xff, 0xff, 0xff, GROUP, 0xff, 0xff, CONTROL];
  else if (group === 5) usage = [opcode, RW_FLAGS, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, GROUP, CONTROL];
  else usage = [opcode, RW_FLAGS, ...new Array<number>(12).fill(0xff), GROUP, CONTROL];
  const dataOut = isRead ? undefined : rangeDataOut;
  return { name, opcode, usage, class: isRead ? 'read' : 'write', access: isRead ? 'read' : 'write', handler, dataOut };
}

export const READ_WRITE_SPECS: readonly CommandSpec[] = [
  rw('READ(6)', 0x08, read, true),
  rw('WRITE(6)', 0x0a, write, false),
  rw('READ(10)', 0x28, read, true),
  rw('WRITE(10)', 0x2a, write, false),
  rw('READ(12)', 0xa8, read, true),
  rw('WRITE(12)', 0xaa, write, false),
  rw('READ(16)', 0x88, read, true),
  rw('WRITE(16)', 0x8a, write, false),
  {
    name: 'SYNCHRONIZE CACHE(10)',
    opcode: 0x35,
    usage: [0x35, 0x06, 0xff, 0xff, 0xff, 0xff, GROUP, 0xff, 0xff, CONTROL],
    class: 'flush',
    access: 'write',
    handler: synchronizeCache,
  },
  {
    name: 'SYNCHRONIZE CACHE(16)',
    opcode: 0x91,
    usage: [0x91, 0x06, ...new Array<number>(12).fill(0xff), GROUP, CONTROL],
    class: 'flush',
    access: 'write',
    handler: synchronizeCache,
  },
];

