import type { CommandContext, CommandSpec } from './command-table';
import { readU64 } from './cdb';
import type { LogicalUnit } from './logical-unit';
import { exactDataOut, withRange } from './read-write';
import { invalidFieldInCdb, invalidFieldInParameterList, lbaOutOfRange, parameterListLengthError } from './sense';

const CONTROL = 0x00;
const GROUP = 0x1f;
/** WRITE SAME without UNMAP writes the pattern in pieces of this size. */
const FILL_PIECE_BYTES = 1024 * 1024;

/**
 * WRITE SAME(10/16) (SBC-3 §5.42-5.43). UNMAP=1 with a zero block (or NDOB)
 * deallocates, which reads back as zeros (LBPRZ=1); a non-zero block is
 * written even with UNMAP=1. ANCHOR, PBDATA and LBDATA are refused by the
 * usage map. WSNZ=1: zero blocks is an invalid field, not "to the end".
 */
async function writeSame(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const sixteen = cdb[0] === 0x93;
  const lba = sixteen ? readU64(cdb, 2) : cdb.readUInt32BE(2);
  const count = sixteen ? cdb.readUInt32BE(10) : cdb.readUInt16BE(7);
  const lengthByte = sixteen ? 10 : 7;
  const unmap = (cdb[1] & 0x08) !== 0;
  const ndob = sixteen && (cdb[1] & 0x01) !== 0;
  if (count === 0) throw invalidFieldInCdb(lengthByte);
  lu.checkRange(lba, count);
  if (count > lu.limits.maxWriteSameBlocks) throw invalidFieldInCdb(lengthByte);
  const bs = lu.blockSize;
  let block: Buffer;
  if (ndob) {
    exactDataOut(ctx, 0, 1);
    block = Buffer.alloc(bs);
  } else {
    block = exactDataOut(ctx, bs, lengthByte);
  }
  const zero = block.every((b) => b === 0);
  await withRange(lu, lba, count, async () => {
    if (unmap && zero) {
      await lu.device.unmap(lba * bs, count * bs);
      return;
    }
    await fill(ctx, lba, count, block);
  });
}

/** Writes the block over the range in pieces; an abort stops it between pieces. */
async function fill(ctx: CommandContext, lba: number, count: number, block: Buffer): Promise<void> {
  const { lu } = ctx;
  const bs = lu.blockSize;
  const pieceBlocks = Math.max(1, Math.min(count, Math.floor(FILL_PIECE_BYTES / bs)));
  const piece = Buffer.alloc(pieceBlocks * bs);
  for (let i = 0; i < pieceBlocks; i += 1) block.copy(piece, i * bs);
  for (let done = 0; done < count; done += pieceBlocks) {
    if (ctx.command.signal?.aborted) return;
    const n = Math.min(pieceBlocks, count - done);
    await lu.device.write((lba + done) * bs, n === pieceBlocks ? piece : piece.subarray(0, n * bs));
  }
}

/** One logical block of Data-Out, none with NDOB=1 (WRITE SAME(16) only). */
function writeSameDataOut(cdb: Buffer, blockSize: number): number {
  return cdb[0] === 0x93 && (cdb[1] & 0x01) !== 0 ? 0 : blockSize;
}

interface UnmapDescriptor {
  readonly lba: number;
  readonly count: number;
}

/**
 * Parses and checks the whole UNMAP parameter list (SBC-3 §5.28.2) before any
 * block is touched, so a bad descriptor leaves the medium unchanged.
 */
export function parseUnmapList(lu: LogicalUnit, list: Buffer): UnmapDescriptor[] {
  if (list.length < 8) throw parameterListLengthError();
  const declared = list.readUInt16BE(2);
  // A trailing partial descriptor is ignored (SBC-3 §5.28.2).
  const n = Math.floor(Math.min(declared, list.length - 8) / 16);
  if (n > lu.limits.maxUnmapDescriptors) throw invalidFieldInParameterList(2);
  const descriptors: UnmapDescriptor[] = [];
  let total = 0;
  for (let i = 0; i < n; i += 1) {
    const at = 8 + i * 16;
    const lba = readU64(list, at);
    const count = list.readUInt32BE(at + 8);
    if (count > lu.limits.maxUnmapBlocks) throw invalidFieldInParameterList(at + 8);
    if (!(lba + count <= lu.blocks())) throw lbaOutOfRange();
    total += count;
    if (count > 0) descriptors.push({ lba, count });
  }
  if (total > lu.limits.maxUnmapBlocks) throw invalidFieldInParameterList(8);
  return descriptors;
}

/** UNMAP (SBC-3 §5.28). ANCHOR=1 is refused by the usage map (ANC_SUP=0). */
async function unmap(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const length = cdb.readUInt16BE(7);
  if (length === 0) return;
  const data = ctx.command.dataOut;
  if (!data || data.length < length) throw parameterListLengthError();
  const bs = lu.blockSize;
  for (const d of parseUnmapList(lu, data.subarray(0, length))) {
    await withRange(lu, d.lba, d.count, () => lu.device.unmap(d.lba * bs, d.count * bs));
  }
}

export const PROVISIONING_SPECS: readonly CommandSpec[] = [
  {
    name: 'WRITE SAME(10)',
    opcode: 0x41,
    usage: [0x41, 0x08, 0xff, 0xff, 0xff, 0xff, GROUP, 0xff, 0xff, CONTROL],
    class: 'write',
    access: 'write',
    handler: writeSame,
    dataOut: writeSameDataOut,
  },
  { name: 'UNMAP', opcode: 0x42, usage: [0x42, 0x00, 0, 0, 0, 0, GROUP, 0xff, 0xff, CONTROL], class: 'unmap', access: 'write', handler: unmap, dataOut: (cdb) => cdb.readUInt16BE(7) },
  {
    name: 'WRITE SAME(16)',
    opcode: 0x93,
    usage: [0x93, 0x09, ...new Array<number>(12).fill(0xff), GROUP, CONTROL],
    class: 'write',
    access: 'write',
    handler: writeSame,
    dataOut: writeSameDataOut,
  },
];
