import type { CommandContext, CommandSpec } from './command-table';
import { nulPadded, truncate, writeU64 } from './cdb';
import { isAllRegistrants, type PersistentReservations } from './pr-state';
import type { Nexus } from './types';

/** The one target port (SPC-4 §7.8.6.5), as in the Device Identification VPD page. */
const RELATIVE_TARGET_PORT = 1;

function withHeader(generation: number, body: Buffer): Buffer {
  const header = Buffer.alloc(8);
  header.writeUInt32BE(generation >>> 0, 0);
  header.writeUInt32BE(body.length, 4);
  return Buffer.concat([header, body]);
}

/** READ KEYS (SPC-4 §6.15.2): every registered key, one per I_T nexus. */
function readKeys(pr: PersistentReservations): Buffer {
  const keys = [...pr.registrations.values()].map((reg) => {
    const b = Buffer.alloc(8);
    writeU64(b, 0, reg.key);
    return b;
  });
  return withHeader(pr.generation, Buffer.concat(keys));
}

/** READ RESERVATION (SPC-4 §6.15.3): the key is 0 for all-registrants types. */
function readReservation(pr: PersistentReservations): Buffer {
  const r = pr.reservation;
  if (!r) return withHeader(pr.generation, Buffer.alloc(0));
  const body = Buffer.alloc(16);
  writeU64(body, 0, isAllRegistrants(r.type) ? 0n : (pr.keyOf(r.holder) ?? 0n));
  body[13] = r.type; // SCOPE 0h (LU_SCOPE)
  return withHeader(pr.generation, body);
}

/**
 * REPORT CAPABILITIES (SPC-4 §6.15.4): CRH=1 (RESERVE(6) conflicts with
 * persistent reservations), no SIP_C/ATP_C/PTPL_C, TMV=1 with every type.
 */
function reportCapabilities(): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt16BE(8, 0);
  data[2] = 0x10; // CRH
  data[3] = 0x80; // TMV; ALLOW COMMANDS 000b
  data[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02; // WR_EX_AR, EX_AC_RO, WR_EX_RO, EX_AC, WR_EX
  data[5] = 0x01; // EX_AC_AR
  return data;
}

/** iSCSI TransportID, format 01b: "name,i,0x<ISID>" (SPC-4 §7.6.4.6). */
export function transportId(nexus: Nexus): Buffer {
  const name = nulPadded(`${nexus.initiatorName},i,0x${nexus.isid}`, 20);
  const header = Buffer.alloc(4);
  header[0] = 0x40 | 0x05;
  header.writeUInt16BE(name.length, 2);
  return Buffer.concat([header, name]);
}

/** READ FULL STATUS (SPC-4 §6.15.5): one descriptor per registration. */
function readFullStatus(pr: PersistentReservations): Buffer {
  const descriptors = [...pr.registrations].map(([id, reg]) => {
    const tid = transportId(reg.nexus);
    const d = Buffer.alloc(24);
    writeU64(d, 0, reg.key);
    const holder = pr.isHolder(id);
    d[12] = holder ? 0x01 : 0x00; // R_HOLDER
    d[13] = holder && pr.reservation ? pr.reservation.type : 0;
    d.writeUInt16BE(RELATIVE_TARGET_PORT, 18);
    d.writeUInt32BE(tid.length, 20);
    return Buffer.concat([d, tid]);
  });
  return withHeader(pr.generation, Buffer.concat(descriptors));
}

/** PERSISTENT RESERVE IN (SPC-4 §6.15). */
function persistentReserveIn(ctx: CommandContext): Buffer {
  const { cdb, lu } = ctx;
  const pr = lu.reservations;
  const allocation = cdb.readUInt16BE(7);
  switch (cdb[1] & 0x1f) {
    case 0:
      return truncate(readKeys(pr), allocation);
    case 1:
      return truncate(readReservation(pr), allocation);
    case 2:
      return truncate(reportCapabilities(), allocation);
    default:
      return truncate(readFullStatus(pr), allocation);
  }
}

const NAMES = ['READ KEYS', 'READ RESERVATION', 'REPORT CAPABILITIES', 'READ FULL STATUS'];

export const PR_IN_SPECS: readonly CommandSpec[] = NAMES.map((name, action) => ({
  name: `PERSISTENT RESERVE IN/${name}`,
  opcode: 0x5e,
  serviceAction: action,
  usage: [0x5e, action, 0, 0, 0, 0, 0, 0xff, 0xff, 0],
  class: 'reservation',
  access: 'always',
  handler: persistentReserveIn,
}));
