import type { CommandContext, CommandSpec } from './command-table';
import { truncate, writeAscii } from './cdb';
import { invalidFieldInCdb } from './sense';
import { PRODUCT, REVISION, VENDOR } from './identity';
import { vpdPage } from './vpd-pages';


/** Version descriptors (SPC-4 §6.4.2, table 147): SAM-5, iSCSI, SPC-4, SBC-3. */
const VERSION_DESCRIPTORS = [0x00a0, 0x0960, 0x0460, 0x04c0];
const STANDARD_LENGTH = 66;

/**
 * Standard INQUIRY data (SPC-4 §6.4.2). Peripheral qualifier 000b with a
 * direct-access device, or 011b / type 1Fh for a LUN the target does not have.
 */
export function standardInquiry(present: boolean): Buffer {
  const data = Buffer.alloc(STANDARD_LENGTH);
  data[0] = present ? 0x00 : 0x7f;
  data[2] = 0x06; // VERSION: SPC-4
  data[3] = 0x10 | 0x02; // HISUP=1, RESPONSE DATA FORMAT=2, NORMACA=0
  data[4] = STANDARD_LENGTH - 5;
  data[5] = 0x00; // TPGS=00b: no asymmetric access, 3PC=0, PROTECT=0
  data[6] = 0x00;
  data[7] = 0x02; // CMDQUE=1
  writeAscii(data, 8, 8, VENDOR);
  writeAscii(data, 16, 16, PRODUCT);
  writeAscii(data, 32, 4, REVISION);
  VERSION_DESCRIPTORS.forEach((d, i) => data.writeUInt16BE(d, 58 + i * 2));
  return data;
}

/** INQUIRY (SPC-4 §6.4): standard data, or a VPD page when EVPD=1. */
export function inquiry(ctx: CommandContext): Buffer {
  return inquiryData(ctx.cdb, true, (page) => vpdPage(ctx, page));
}

/** INQUIRY on a LUN that does not exist: only standard data, with peripheral qualifier 011b. */
export function inquiryNoLun(cdb: Buffer): Buffer {
  return inquiryData(cdb, false, () => {
    throw invalidFieldInCdb(1, 0);
  });
}

function inquiryData(cdb: Buffer, present: boolean, vpd: (page: number) => Buffer): Buffer {
  const evpd = (cdb[1] & 0x01) !== 0;
  const page = cdb[2];
  const allocation = cdb.readUInt16BE(3);
  if (!evpd) {
    if (page !== 0) throw invalidFieldInCdb(2);
    return truncate(standardInquiry(present), allocation);
  }
  return truncate(vpd(page), allocation);
}

export const INQUIRY_SPEC: CommandSpec = {
  name: 'INQUIRY',
  opcode: 0x12,
  usage: [0x12, 0x01, 0xff, 0xff, 0xff, 0x00],
  class: 'inquiry',
  access: 'always',
  skipsUnitAttention: true,
  handler: inquiry,
};
