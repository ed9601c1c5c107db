import type { CommandContext, CommandSpec } from './command-table';
import { truncate, writeU64 } from './cdb';
import type { LogicalUnit } from './logical-unit';
import { MODE_PAGES, PageControl, findModePage, pageValues, type ModePage } from './mode-pages';
import { ASC, ScsiError, SenseKey, invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError } from './sense';

const CONTROL_BYTE = 0x00;
/**
 * DEVICE-SPECIFIC PARAMETER (SBC-3 §6.4.1): DPOFUA=1 (DPO and FUA are
 * accepted); WP=1 while the medium is write-protected, here by SWP.
 */
function deviceSpecific(lu: LogicalUnit): number {
  return 0x10 | (lu.softwareWriteProtect ? 0x80 : 0);
}

/** Short (8) or long (16 byte, LONGLBA) LBA mode parameter block descriptor (SBC-3 §6.4.2). */
function blockDescriptor(lu: LogicalUnit, long: boolean): Buffer {
  const blocks = lu.blocks();
  if (long) {
    const d = Buffer.alloc(16);
    writeU64(d, 0, blocks);
    d.writeUInt32BE(lu.blockSize, 12);
    return d;
  }
  const d = Buffer.alloc(8);
  d.writeUInt32BE(blocks > 0xffffffff ? 0xffffffff : blocks, 0);
  d.writeUIntBE(lu.blockSize, 5, 3);
  return d;
}

/** The pages selected by PAGE CODE and SUBPAGE CODE; only subpage 0 exists (FFh with 3Fh means all). */
function selectPages(lu: LogicalUnit, code: number, subpage: number, pc: PageControl): Buffer[] {
  if (code === 0x3f) {
    if (subpage !== 0 && subpage !== 0xff) throw invalidFieldInCdb(3);
    return MODE_PAGES.map((p) => pageValues(p, pc, lu));
  }
  const page = findModePage(code);
  if (!page) throw invalidFieldInCdb(2, 5);
  if (subpage !== 0) throw invalidFieldInCdb(3);
  return [pageValues(page, pc, lu)];
}

/**
 * MODE SENSE(6) and (10) (SPC-4 §6.11-6.12). Saved values are not supported:
 * PC=11b answers SAVING PARAMETERS NOT SUPPORTED (SPC-4 §6.11.1).
 */
function modeSense(ctx: CommandContext): Buffer {
  const { cdb, lu } = ctx;
  const ten = cdb[0] === 0x5a;
  const dbd = (cdb[1] & 0x08) !== 0;
  const llbaa = ten && (cdb[1] & 0x10) !== 0;
  const pc = (cdb[2] >> 6) as PageControl;
  if (pc === PageControl.Saved) throw ScsiError.of(SenseKey.IllegalRequest, ASC.SavingParametersNotSupported, { field: { inCdb: true, byte: 2, bit: 7 } });
  const pages = Buffer.concat(selectPages(lu, cdb[2] & 0x3f, cdb[3], pc));
  const descriptor = dbd ? Buffer.alloc(0) : blockDescriptor(lu, llbaa);
  let header: Buffer;
  if (ten) {
    header = Buffer.alloc(8);
    header.writeUInt16BE(header.length + descriptor.length + pages.length - 2, 0);
    header[3] = deviceSpecific(lu);
    header[4] = llbaa && !dbd ? 0x01 : 0x00; // LONGLBA
    header.writeUInt16BE(descriptor.length, 6);
  } else {
    header = Buffer.alloc(4);
    header[0] = header.length + descriptor.length + pages.length - 1;
    header[2] = deviceSpecific(lu);
    header[3] = descriptor.length;
  }
  const allocation = ten ? cdb.readUInt16BE(7) : cdb[4];
  return truncate(Buffer.concat([header, descriptor, pages]), allocation);
}

/**
 * MODE SELECT(6) and (10) (SPC-4 §6.9-6.10). Every field but the changeable
 * ones (SWP) must keep its current value: a differing bit is INVALID FIELD
 * IN PARAMETER LIST pointing at it. SP=1 is refused (nothing is saved). The
 * whole list is checked before any value is taken, so a bad list changes
 * nothing; a change raises MODE PARAMETERS CHANGED on the other I_T nexuses
 * (SPC-4 §6.9.1), since the parameters are shared by all of them.
 */
function modeSelect(ctx: CommandContext): void {
  const { cdb, lu } = ctx;
  const ten = cdb[0] === 0x55;
  if (cdb[1] & 0x01) throw invalidFieldInCdb(1, 0);
  const length = ten ? cdb.readUInt16BE(7) : cdb[4];
  if (length === 0) return;
  const data = ctx.command.dataOut;
  const headerLength = ten ? 8 : 4;
  if (!data || data.length < length || length < headerLength) throw parameterListLengthError();
  const list = data.subarray(0, length);
  const descriptorLength = ten ? list.readUInt16BE(6) : list[3];
  const long = ten && (list[4] & 0x01) !== 0;
  let offset = headerLength;
  if (descriptorLength > 0) {
    const size = long ? 16 : 8;
    if (descriptorLength !== size || offset + size > list.length) throw invalidFieldInParameterList(ten ? 6 : 3);
    const ours = blockDescriptor(lu, long);
    const theirs = list.subarray(offset, offset + size);
    // A zero block count means "unchanged" (SBC-3 §6.4.2); the block length must match.
    const lengthAt = long ? 12 : 5;
    if (!theirs.subarray(lengthAt).equals(ours.subarray(lengthAt))) throw invalidFieldInParameterList(offset + lengthAt);
    const blocksEnd = long ? 8 : 4;
    const zero = theirs.subarray(0, blocksEnd).every((b) => b === 0);
    if (!zero && !theirs.subarray(0, blocksEnd).equals(ours.subarray(0, blocksEnd))) throw invalidFieldInParameterList(offset);
    offset += size;
  }
  const pages: { page: ModePage; values: Buffer }[] = [];
  while (offset < list.length) {
    const page = checkPage(lu, list, offset);
    const end = offset + page.current(lu).length;
    pages.push({ page, values: list.subarray(offset, end) });
    offset = end;
  }
  let changed = false;
  for (const { page, values } of pages) changed = page.apply(lu, values) || changed;
  if (changed) ctx.target.raiseExcept(lu, ASC.ModeParametersChanged, ctx.command.nexus.id);
}

/** Compares one page of a MODE SELECT parameter list with the current values outside the changeable bits. */
function checkPage(lu: LogicalUnit, list: Buffer, offset: number): ModePage {
  if (offset + 2 > list.length) throw parameterListLengthError();
  if (list[offset] & 0x40) throw invalidFieldInParameterList(offset, 6); // SPF: no subpages
  const page = findModePage(list[offset] & 0x3f);
  if (!page) throw invalidFieldInParameterList(offset, 5);
  const current = page.current(lu);
  const changeable = page.changeable();
  if (list[offset + 1] !== current[1]) throw invalidFieldInParameterList(offset + 1);
  if (offset + current.length > list.length) throw parameterListLengthError();
  for (let i = 2; i < current.length; i += 1) {
    const diff = (list[offset + i] ^ current[i]) & ~changeable[i] & 0xff;
    if (diff !== 0) throw invalidFieldInParameterList(offset + i, 31 - Math.clz32(diff));
  }
  return page;
}

export const MODE_SPECS: readonly CommandSpec[] = [
  { name: 'MODE SELECT(6)', opcode: 0x15, usage: [0x15, 0x11, 0, 0, 0xff, CONTROL_BYTE], class: 'other', access: 'write', handler: modeSelect, dataOut: (cdb) => cdb[4] },
  { name: 'MODE SENSE(6)', opcode: 0x1a, usage: [0x1a, 0x08, 0xff, 0xff, 0xff, CONTROL_BYTE], class: 'inquiry', access: 'read', handler: modeSense },
  {
    name: 'MODE SELECT(10)',
    opcode: 0x55,
    usage: [0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, CONTROL_BYTE],
    class: 'other',
    access: 'write',
    handler: modeSelect,
    dataOut: (cdb) => cdb.readUInt16BE(7),
  },
  {
    name: 'MODE SENSE(10)',
    opcode: 0x5a,
    usage: [0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, CONTROL_BYTE],
    class: 'inquiry',
    access: 'read',
    handler: modeSense,
  },
];
