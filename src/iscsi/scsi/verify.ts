import type { CommandContext, CommandSpec } from './command-table';
import { checkTransfer, decodeRange, rangeDataOut, takeDataOut, withRange, writableDataOut } from './read-write';
import { deviceErrorToScsi, invalidFieldInCdb, miscompare } from './sense';

const CONTROL = 0x00;
const GROUP = 0x1f;
/** DPO (ignored) and the two-bit BYTCHK field of SBC-4; SBC-3 used only bit 1. */
const VERIFY_FLAGS = 0x16;

/** Offset of the first differing byte, or -1. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.equals(b)) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) if (a[i] !== b[i]) return i;
  return n;
}

/**
 * Reads the range in MAXIMUM TRANSFER LENGTH pieces, handing each piece to
 * `visit`; a VERIFY can span the whole medium, so an abort stops it between pieces.
 */
async function readInPieces(
  ctx: CommandContext,
  lba: number,
  count: number,
  visit: (data: Buffer, firstBlock: number) => void,
): Promise<void> {
  const { lu } = ctx;
  const step = lu.limits.maxTransferBlocks;
  for (let done = 0; done < count; done += step) {
    if (ctx.command.signal?.aborted) return;
    const n = Math.min(step, count - done);
    let data: Buffer;
    try {
      data = await lu.device.read((lba + done) * lu.blockSize, n * lu.blockSize);
    } catch (err) {
      throw deviceErrorToScsi(err);
    }
    visit(data, done);
  }
}

/**
 * VERIFY(10/12/16) (SBC-3 §5.33-5.35). BYTCHK=0 reads the range back to prove
 * the medium readable (a CRC failure below surfaces as MEDIUM ERROR);
 * BYTCHK=1 compares the Data-Out with the medium; BYTCHK=3 (SBC-4) compares
 * one Data-Out block with every block. A difference is MISCOMPARE with the
 * byte offset into the Data-Out in INFORMATION.
 */
async function verify(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 2) throw invalidFieldInCdb(1, 2);
  lu.checkRange(range.lba, range.count);
  if (range.count === 0) return;
  const bs = lu.blockSize;
  if (bytchk === 0) {
    await readInPieces(ctx, range.lba, range.count, () => undefined);
    return;
  }
  if (bytchk === 1) {
    checkTransfer(lu, range);
    const expected = takeDataOut(ctx, range.count * bs);
    await readInPieces(ctx, range.lba, range.count, (data, first) => {
      const at = firstDifference(expected.subarray(first * bs, first * bs + data.length), data);
      if (at >= 0) throw miscompare(first * bs + at);
    });
    return;
  }
  const block = takeDataOut(ctx, bs);
  await readInPieces(ctx, range.lba, range.count, (data, first) => {
    for (let b = 0; b * bs < data.length; b += 1) {
      const at = firstDifference(block, data.subarray(b * bs, (b + 1) * bs));
      if (at >= 0) throw miscompare((first + b) * bs + at);
    }
  });
}

/**
 * WRITE AND VERIFY(10/12/16) (SBC-3 §5.36-5.38): the write goes to stable
 * storage (FUA), and with BYTCHK=1 is read back and compared, all under the
 * range lock so no other write slips in between.
 */
async function writeAndVerify(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk > 1) throw invalidFieldInCdb(1, 2);
  checkTransfer(lu, range);
  const data = writableDataOut(ctx, range.count * lu.blockSize, lu.blockSize);
  if (data.length === 0) return;
  const offset = range.lba * lu.blockSize;
  await withRange(lu, range.lba, range.count, async () => {
    await lu.device.write(offset, data, { fua: true });
    if (bytchk === 1) {
      const at = firstDifference(data, await lu.device.read(offset, data.length));
      if (at >= 0) throw miscompare(at);
    }
  });
}

/** VERIFY carries Data-Out only with BYTCHK: the whole range for 01b, one block for 11b. */
function verifyDataOut(cdb: Buffer, blockSize: number): number {
  const bytchk = (cdb[1] >> 1) & 0x03;
  if (bytchk === 1) return rangeDataOut(cdb, blockSize);
  return bytchk === 3 ? blockSize : 0;
}

function spec(name: string, opcode: number, handler: (ctx: CommandContext) => Promise<void>, isVerify: boolean): CommandSpec {
  const group = opcode >> 5;
  let usage: number[];
  if (group === 1) usage = [opcode, VERIFY_FLAGS, 0xff, 0xff, 0xff, 0xff, GROUP, 0xff, 0xff, CONTROL];
  else if (group === 5) usage = [opcode, VERIFY_FLAGS, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, GROUP, CONTROL];
  else usage = [opcode, VERIFY_FLAGS, ...new Array<number>(12).fill(0xff), GROUP, CONTROL];
  return { name, opcode, usage, class: isVerify ? 'verify' : 'write', access: isVerify ? 'read' : 'write', handler, dataOut: isVerify ? verifyDataOut : rangeDataOut };
}

export const VERIFY_SPECS: readonly CommandSpec[] = [
  spec('WRITE AND VERIFY(10)', 0x2e, writeAndVerify, false),
  spec('VERIFY(10)', 0x2f, verify, true),
  spec('WRITE AND VERIFY(12)', 0xae, writeAndVerify, false),
  spec('VERIFY(12)', 0xaf, verify, true),
  spec('WRITE AND VERIFY(16)', 0x8e, writeAndVerify, false),
  spec('VERIFY(16)', 0x8f, verify, true),
];
