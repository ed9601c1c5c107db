import type { CommandContext, CommandSpec } from './command-table';
import { truncate } from './cdb';
import { checkTransfer, decodeRange, fuaOf, rangeDataOut, takeDataOut, withRange } from './read-write';

const CONTROL = 0x00;
const GROUP = 0x1f;

/**
 * PRE-FETCH(10/16) (SBC-3 §5.9-5.10): the range is checked; there is no
 * cache in the SCSI layer to load, so the answer is GOOD ("not all blocks
 * fit"), never CONDITION MET.
 */
function preFetch(ctx: CommandContext): void {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  lu.checkRange(range.lba, range.count);
}

/**
 * ORWRITE(16) (SBC-3 §5.11, with BMOP 000b): each Data-Out byte is ORed into
 * the medium. Read, OR and write run under the range lock, so the update is
 * atomic against other writes, like COMPARE AND WRITE.
 */
async function orWrite(ctx: CommandContext): Promise<void> {
  const { lu, cdb } = ctx;
  const range = decodeRange(cdb);
  checkTransfer(lu, range);
  const bytes = range.count * lu.blockSize;
  const data = takeDataOut(ctx, bytes);
  if (range.count === 0) return;
  const offset = range.lba * lu.blockSize;
  await withRange(lu, range.lba, range.count, async () => {
    const current = await lu.device.read(offset, bytes);
    for (let i = 0; i < bytes; i += 1) current[i] |= data[i];
    await lu.device.write(offset, current, { fua: fuaOf(cdb) });
  });
}

/**
 * READ DEFECT DATA(10/12) (SBC-3 §5.12-5.13): a virtual medium has no
 * defects; the header echoes the lists and format asked for, with length 0.
 */
function readDefectData(ctx: CommandContext): Buffer {
  const { cdb } = ctx;
  if (cdb[0] === 0x37) {
    const header = Buffer.from([0, cdb[2] & 0x1f, 0, 0]);
    return truncate(header, cdb.readUInt16BE(7));
  }
  const header = Buffer.alloc(8);
  header[1] = cdb[1] & 0x1f;
  return truncate(header, cdb.readUInt32BE(6));
}

export const MEDIUM_SPECS: readonly CommandSpec[] = [
  {
    name: 'PRE-FETCH(10)',
    opcode: 0x34,
    usage: [0x34, 0x02, 0xff, 0xff, 0xff, 0xff, GROUP, 0xff, 0xff, CONTROL],
    class: 'other',
    access: 'read',
    handler: preFetch,
  },
  {
    name: 'READ DEFECT DATA(10)',
    opcode: 0x37,
    usage: [0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, CONTROL],
    class: 'inquiry',
    access: 'read',
    handler: readDefectData,
  },
  {
    name: 'ORWRITE(16)',
    opcode: 0x8b,
    usage: [0x8b, 0x1a, ...new Array<number>(12).fill(0xff), GROUP, CONTROL],
    class: 'write',
    access: 'write',
    handler: orWrite,
    dataOut: rangeDataOut,
  },
  {
    name: 'PRE-FETCH(16)',
    opcode: 0x90,
    usage: [0x90, 0x02, ...new Array<number>(12).fill(0xff), GROUP, CONTROL],
    class: 'other',
    access: 'read',
    handler: preFetch,
  },
  {
    name: 'READ DEFECT DATA(12)',
    opcode: 0xb7,
    usage: [0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CONTROL],
    class: 'inquiry',
    access: 'read',
    handler: readDefectData,
  },
];
