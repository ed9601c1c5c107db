import type { CommandContext, CommandSpec } from './command-table';
import { truncate } from './cdb';
import { invalidFieldInCdb } from './sense';

/** Command timeouts descriptor (SPC-4 §6.35.4): no nominal time, 60 s recommended. */
function timeoutDescriptor(): Buffer {
  const d = Buffer.alloc(12);
  d.writeUInt16BE(0x0a, 0);
  d.writeUInt32BE(0, 4);
  d.writeUInt32BE(60, 8);
  return d;
}

function compare(a: CommandSpec, b: CommandSpec): number {
  return a.opcode - b.opcode || (a.serviceAction ?? 0) - (b.serviceAction ?? 0);
}

/** All-commands format (SPC-4 §6.35.2): 8-byte descriptors, each followed by a timeout descriptor with RCTD. */
function allCommands(specs: readonly CommandSpec[], rctd: boolean): Buffer {
  const descriptors = [...specs].sort(compare).map((spec) => {
    const d = Buffer.alloc(8);
    d[0] = spec.opcode;
    d.writeUInt16BE(spec.serviceAction ?? 0, 2);
    d[5] = (rctd ? 0x02 : 0) | (spec.serviceAction !== undefined ? 0x01 : 0);
    d.writeUInt16BE(spec.usage.length, 6);
    return rctd ? Buffer.concat([d, timeoutDescriptor()]) : d;
  });
  const body = Buffer.concat(descriptors);
  const header = Buffer.alloc(4);
  header.writeUInt32BE(body.length, 0);
  return Buffer.concat([header, body]);
}

/** One-command format (SPC-4 §6.35.3): SUPPORT 011b with the CDB usage data, or 001b. */
function oneCommand(spec: CommandSpec | undefined, rctd: boolean): Buffer {
  if (!spec) return Buffer.from([0, 0x01, 0, 0]);
  const header = Buffer.from([0, (rctd ? 0x80 : 0) | 0x03, 0, spec.usage.length]);
  const parts: Buffer[] = [header, Buffer.from(spec.usage)];
  if (rctd) parts.push(timeoutDescriptor());
  return Buffer.concat(parts);
}

/**
 * REPORT SUPPORTED OPERATION CODES (SPC-4 §6.35), built from the dispatch
 * table so it cannot drift from what the target runs. Reporting options:
 * 0 all, 1 by opcode (an opcode with service actions is an invalid field),
 * 2 by opcode and service action (an opcode without them is invalid),
 * 3 by opcode and, where it has them, service action.
 */
function reportSupportedOperationCodes(ctx: CommandContext): Buffer {
  const { cdb, target } = ctx;
  const rctd = (cdb[2] & 0x80) !== 0;
  const options = cdb[2] & 0x07;
  const opcode = cdb[3];
  const serviceAction = cdb.readUInt16BE(4);
  const allocation = cdb.readUInt32BE(6);
  const specs = target.commands();
  const lookup = (sa?: number) => specs.find((s) => s.opcode === opcode && s.serviceAction === sa);
  const hasServiceActions = specs.some((s) => s.opcode === opcode && s.serviceAction !== undefined);
  switch (options) {
    case 0:
      return truncate(allCommands(specs, rctd), allocation);
    case 1:
      if (hasServiceActions) throw invalidFieldInCdb(3);
      return truncate(oneCommand(lookup(), rctd), allocation);
    case 2:
      if (!hasServiceActions && lookup()) throw invalidFieldInCdb(3);
      return truncate(oneCommand(lookup(serviceAction), rctd), allocation);
    case 3:
      return truncate(oneCommand(hasServiceActions ? lookup(serviceAction) : lookup(), rctd), allocation);
    default:
      throw invalidFieldInCdb(2, 2);
  }
}

/**
 * REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS (SPC-4 §6.37): the functions the
 * iSCSI transport handles: ABORT TASK, ABORT TASK SET, CLEAR TASK SET,
 * LOGICAL UNIT RESET, TARGET RESET. REPCD=1 asks for the 16-byte form.
 */
function reportSupportedTaskManagementFunctions(ctx: CommandContext): Buffer {
  const { cdb } = ctx;
  const allocation = cdb.readUInt32BE(6);
  if (allocation < 4) throw invalidFieldInCdb(6);
  const extended = (cdb[2] & 0x80) !== 0;
  const data = Buffer.alloc(extended ? 16 : 4);
  data[0] = 0x80 | 0x40 | 0x10 | 0x08 | 0x02; // ATS, ATSS, CTSS, LURS, TRS
  if (extended) data[3] = 0x0c;
  return truncate(data, allocation);
}

export const REPORT_SPECS: readonly CommandSpec[] = [
  {
    name: 'REPORT SUPPORTED OPERATION CODES',
    opcode: 0xa3,
    serviceAction: 0x0c,
    usage: [0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
    class: 'inquiry',
    access: 'always',
    handler: reportSupportedOperationCodes,
  },
  {
    name: 'REPORT SUPPORTED TASK MANAGEMENT FUNCTIONS',
    opcode: 0xa3,
    serviceAction: 0x0d,
    usage: [0xa3, 0x0d, 0x80, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, 0],
    class: 'inquiry',
    access: 'always',
    handler: reportSupportedTaskManagementFunctions,
  },
];
