import type { CommandContext, CommandSpec, TargetInfo } from './command-table';
import { readU64, truncate, writeU64 } from './cdb';
import { PHYSICAL_BLOCK_BYTES } from './logical-unit';
import { ASC, SenseKey, buildSense, invalidFieldInCdb } from './sense';

/** TEST UNIT READY (SPC-4 §6.47): the LU is always ready once it is served. */
function testUnitReady(): void {}

/** LUN field of REPORT LUNS (SAM-5 §4.7): peripheral addressing below 256, flat space above. */
export function encodeLun(lun: number): Buffer {
  const out = Buffer.alloc(8);
  if (lun < 256) out[1] = lun;
  else out.writeUInt16BE(0x4000 | (lun & 0x3fff), 0);
  return out;
}

/**
 * REPORT LUNS (SPC-4 §6.33). SELECT REPORT 0 and 2 list every LU (Trireme has
 * no well-known LUs), 1 lists the well-known ones: none. An allocation length
 * under 16 is an error (SPC-4 §6.33).
 */
export function reportLuns(cdb: Buffer, target: TargetInfo): Buffer {
  const select = cdb[2];
  const allocation = cdb.readUInt32BE(6);
  if (select > 2) throw invalidFieldInCdb(2);
  if (allocation < 16) throw invalidFieldInCdb(6);
  const luns = select === 1 ? [] : target.lunNumbers();
  const header = Buffer.alloc(8);
  header.writeUInt32BE(luns.length * 8, 0);
  return truncate(Buffer.concat([header, ...luns.map(encodeLun)]), allocation);
}

/** READ CAPACITY(10) (SBC-3 §5.15): FFFFFFFFh tells the initiator to use READ CAPACITY(16). */
function readCapacity10(ctx: CommandContext): Buffer {
  const { cdb, lu } = ctx;
  const pmi = (cdb[8] & 0x01) !== 0;
  // SBC-3 made the LBA field obsolete; a non-zero one without PMI is an invalid field.
  if (!pmi && cdb.readUInt32BE(2) !== 0) throw invalidFieldInCdb(2);
  const data = Buffer.alloc(8);
  const lastLba = lu.blocks() - 1;
  data.writeUInt32BE(lastLba > 0xfffffffe ? 0xffffffff : lastLba, 0);
  data.writeUInt32BE(lu.blockSize, 4);
  return data;
}

/** READ CAPACITY(16) (SBC-3 §5.16): thin provisioning enabled (LBPME=1), unmapped reads zero (LBPRZ=1). */
function readCapacity16(ctx: CommandContext): Buffer {
  const { cdb, lu } = ctx;
  const pmi = (cdb[14] & 0x01) !== 0;
  if (!pmi && readU64(cdb, 2) !== 0) throw invalidFieldInCdb(2);
  const data = Buffer.alloc(32);
  writeU64(data, 0, lu.blocks() - 1);
  data.writeUInt32BE(lu.blockSize, 8);
  const exponent = Math.max(0, Math.log2(PHYSICAL_BLOCK_BYTES / lu.blockSize));
  data[13] = exponent; // LOGICAL BLOCKS PER PHYSICAL BLOCK EXPONENT
  data[14] = 0x80 | 0x40; // LBPME, LBPRZ; LOWEST ALIGNED LBA 0
  return truncate(data, cdb.readUInt32BE(10));
}

/**
 * REQUEST SENSE (SPC-4 §6.39): returns and clears the oldest pending unit
 * attention or deferred error of this nexus, else NO SENSE. Only fixed
 * format is offered (DESC=1 is refused).
 */
function requestSense(ctx: CommandContext): Buffer {
  const { cdb, lu, command } = ctx;
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0);
  const sense = lu.unitAttentions.take(command.nexus.id) ?? buildSense(SenseKey.NoSense, ASC.NoAdditionalSense);
  return truncate(sense, cdb[4]);
}

/** REQUEST SENSE on a LUN the target does not have: LOGICAL UNIT NOT SUPPORTED, with GOOD status (SPC-4 §6.39). */
export function requestSenseNoLun(cdb: Buffer): Buffer {
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0);
  return truncate(buildSense(SenseKey.IllegalRequest, ASC.LogicalUnitNotSupported), cdb[4]);
}

/** START STOP UNIT (SBC-3 §5.25): a virtual medium is always spinning; the request is accepted. */
function startStopUnit(): void {}

const CONTROL = 0x00;

export const BASIC_SPECS: readonly CommandSpec[] = [
  { name: 'TEST UNIT READY', opcode: 0x00, usage: [0x00, 0, 0, 0, 0, CONTROL], class: 'other', access: 'always', handler: testUnitReady },
  {
    name: 'REQUEST SENSE',
    opcode: 0x03,
    usage: [0x03, 0x01, 0, 0, 0xff, CONTROL],
    class: 'other',
    access: 'always',
    skipsUnitAttention: true,
    handler: requestSense,
  },
  {
    name: 'START STOP UNIT',
    opcode: 0x1b,
    usage: [0x1b, 0x01, 0, 0x0f, 0xf7, CONTROL],
    class: 'other',
    access: 'write',
    handler: startStopUnit,
  },
  {
    name: 'READ CAPACITY(10)',
    opcode: 0x25,
    usage: [0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, CONTROL],
    class: 'inquiry',
    access: 'always',
    handler: readCapacity10,
  },
  {
    name: 'READ CAPACITY(16)',
    opcode: 0x9e,
    serviceAction: 0x10,
    usage: [0x9e, 0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, CONTROL],
    class: 'inquiry',
    access: 'always',
    handler: readCapacity16,
  },
  {
    name: 'REPORT LUNS',
    opcode: 0xa0,
    usage: [0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, CONTROL],
    class: 'inquiry',
    access: 'always',
    skipsUnitAttention: true,
    handler: (ctx) => {
      ctx.lu.unitAttentions.clear(ctx.command.nexus.id, ASC.ReportedLunsDataChanged);
      return reportLuns(ctx.cdb, ctx.target);
    },
  },
];
