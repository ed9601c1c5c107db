import type { CommandContext, CommandSpec } from './command-table';
import { readU64 } from './cdb';
import { exactDataOut, fuaOf, withRange } from './read-write';
import { invalidFieldInCdb, miscompare } from './sense';
import { firstDifference } from './verify';

/**
 * COMPARE AND WRITE (SBC-3 §5.2): the Data-Out holds the verify blocks then
 * the write blocks. Read, compare and write run under the LU's range lock,
 * so no write to an overlapping range interleaves (the atomicity SBC-3 asks
 * for). A difference is MISCOMPARE with the byte offset in INFORMATION.
 */
async function compareAndWrite(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const lba = readU64(cdb, 2);
  const count = cdb[13];
  if (count > lu.limits.maxCompareAndWriteBlocks) throw invalidFieldInCdb(13);
  lu.checkRange(lba, count);
  const bytes = count * lu.blockSize;
  const data = exactDataOut(ctx, 2 * bytes, 13);
  if (count === 0) return;
  const expected = data.subarray(0, bytes);
  const replacement = data.subarray(bytes);
  const offset = lba * lu.blockSize;
  await withRange(lu, lba, count, async () => {
    const current = await lu.device.read(offset, bytes);
    const at = firstDifference(expected, current);
    if (at >= 0) throw miscompare(at);
    await lu.device.write(offset, replacement, { fua: fuaOf(cdb) });
  });
}

export const COMPARE_AND_WRITE_SPEC: CommandSpec = {
  name: 'COMPARE AND WRITE',
  opcode: 0x89,
  usage: [0x89, 0x1a, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0x1f, 0x00],
  class: 'write',
  access: 'write',
  handler: compareAndWrite,
  dataOut: (cdb, blockSize) => 2 * cdb[13] * blockSize,
};
