import type { CommandContext, CommandSpec } from './command-table';
import { readU64 } from './cdb';
import type { LogicalUnit } from './logical-unit';
import { deviceErrorToScsi, invalidFieldInCdb } from './sense';

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
 * The Data-Out a write needs. A short Data-Out would leave blocks with
 * undefined content, so the command is refused before anything is written
 * (the transport reports the underflow residual).
 */
export function takeDataOut(ctx: CommandContext, bytes: number, lengthByte: number): Buffer {
  const data = ctx.command.dataOut;
  if (bytes === 0) return Buffer.alloc(0);
  if (!data || data.length < bytes) throw invalidFieldInCdb(lengthByte);
  return data.length === bytes ? data : data.subarray(0, bytes);
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
  const data = takeDataOut(ctx, range.count * lu.blockSize, range.lengthByte);
  if (range.count === 0) return;
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
  return { name, opcode, usage, class: isRead ? 'read' : 'write', access: isRead ? 'read' : 'write', handler };
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

