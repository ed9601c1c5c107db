import { createHash } from 'node:crypto';
import type { CommandContext } from './command-table';
import { nulPadded, writeU64 } from './cdb';
import type { LogicalUnit } from './logical-unit';
import { invalidFieldInCdb } from './sense';
import { VENDOR } from './identity';

/** The VPD pages Trireme returns, in ascending order (SPC-4 §7.8.13 Supported VPD Pages). */
export const SUPPORTED_VPD_PAGES = [0x00, 0x80, 0x83, 0xb0, 0xb1, 0xb2];

/** Relative target port identifier of the one target port (SPC-4 §7.8.6.5); port A is 1. */
const RELATIVE_TARGET_PORT = 1;

/** A VPD page: header (peripheral type, page code, page length) and body. */
function page(code: number, body: Buffer): Buffer {
  const header = Buffer.from([0x00, code, body.length >> 8, body.length & 0xff]);
  return Buffer.concat([header, body]);
}

export function vpdPage(ctx: CommandContext, code: number): Buffer {
  switch (code) {
    case 0x00:
      return page(0x00, Buffer.from(SUPPORTED_VPD_PAGES));
    case 0x80:
      return page(0x80, unitSerial(ctx.lu));
    case 0x83:
      return page(0x83, deviceIdentification(ctx));
    case 0xb0:
      return page(0xb0, blockLimits(ctx.lu));
    case 0xb1:
      return page(0xb1, blockDeviceCharacteristics());
    case 0xb2:
      return page(0xb2, logicalBlockProvisioning());
    default:
      throw invalidFieldInCdb(2);
  }
}

/** Unit Serial Number (SPC-4 §7.8.15): the device id, printable ASCII. */
function unitSerial(lu: LogicalUnit): Buffer {
  return Buffer.from(lu.device.id.replace(/[^\x20-\x7e]/g, '_').slice(0, 250), 'ascii');
}

/**
 * NAA IEEE Registered Extended (NAA 6, SPC-4 §7.8.6.6.4), 16 bytes. Trireme
 * has no IEEE company id of its own, so all 124 bits after the NAA nibble
 * come from a SHA-256 of the device id: stable across restarts and unique
 * per volume, which is what multipath and udev rely on.
 */
export function naaIdentifier(deviceId: string): Buffer {
  const digest = createHash('sha256').update(`trireme-naa:${deviceId}`).digest();
  const naa = Buffer.from(digest.subarray(0, 16));
  naa[0] = 0x60 | (naa[0] & 0x0f);
  return naa;
}

function designator(codeSet: number, piv: boolean, association: number, type: number, value: Buffer, protocol = 0): Buffer {
  const header = Buffer.from([(protocol << 4) | codeSet, (piv ? 0x80 : 0) | (association << 4) | type, 0, value.length]);
  return Buffer.concat([header, value]);
}

/**
 * Device Identification (SPC-4 §7.8.6): the LU's NAA and T10 vendor ids, then,
 * like tgt, the target port's relative port, target port group and SCSI name,
 * and the target device's SCSI name (iSCSI protocol identifier 5).
 */
function deviceIdentification(ctx: CommandContext): Buffer {
  const { lu, target, command } = ctx;
  const iscsi = 0x5;
  const port = Buffer.alloc(4);
  port.writeUInt16BE(RELATIVE_TARGET_PORT, 2);
  const group = Buffer.alloc(4);
  group.writeUInt16BE(command.nexus.portalGroupTag & 0xffff, 2);
  const tpgt = command.nexus.portalGroupTag.toString(16).padStart(4, '0');
  return Buffer.concat([
    designator(0x1, false, 0, 0x3, naaIdentifier(lu.device.id)),
    designator(0x2, false, 0, 0x1, Buffer.from(`${VENDOR.padEnd(8, ' ')}${lu.device.id}`.slice(0, 255), 'ascii')),
    designator(0x1, true, 1, 0x4, port, iscsi),
    designator(0x1, true, 1, 0x5, group, iscsi),
    designator(0x3, true, 1, 0x8, nulPadded(`${target.iqn},t,0x${tpgt}`), iscsi),
    designator(0x3, true, 2, 0x8, nulPadded(target.iqn), iscsi),
  ]);
}

/** Block Limits (SBC-3 §6.5.3), page length 3Ch. */
function blockLimits(lu: LogicalUnit): Buffer {
  const body = Buffer.alloc(0x3c);
  const l = lu.limits;
  body[0] = 0x01; // WSNZ=1: WRITE SAME with zero blocks is refused rather than meaning "to the end"
  body[1] = l.maxCompareAndWriteBlocks;
  body.writeUInt16BE(l.granularityBlocks, 2); // OPTIMAL TRANSFER LENGTH GRANULARITY
  body.writeUInt32BE(l.maxTransferBlocks, 4);
  body.writeUInt32BE(l.optimalTransferBlocks, 8);
  body.writeUInt32BE(0, 12); // MAXIMUM PREFETCH LENGTH
  body.writeUInt32BE(l.maxUnmapBlocks, 16);
  body.writeUInt32BE(l.maxUnmapDescriptors, 20);
  // OPTIMAL UNMAP GRANULARITY. With 4 KiB logical blocks one block is the
  // granularity, so 0 ("not reported") says nothing less; reporting it makes
  // QEMU (7.2) keep an allocation map and probe it with a 512-byte-aligned
  // length, which asserts on a 4 KiB LUN (block/iscsi.c, iscsi_co_block_status).
  body.writeUInt32BE(lu.blockSize > 512 ? 0 : l.granularityBlocks, 24);
  body.writeUInt32BE(0x80000000, 28); // UGAVALID=1, alignment 0
  writeU64(body, 32, l.maxWriteSameBlocks);
  return body;
}

/** Block Device Characteristics (SBC-3 §6.5.2): a non-rotating medium. */
function blockDeviceCharacteristics(): Buffer {
  const body = Buffer.alloc(0x3c);
  body.writeUInt16BE(0x0001, 0); // MEDIUM ROTATION RATE: non-rotating
  return body;
}

/**
 * Logical Block Provisioning (SBC-3 §6.5.4): thin, UNMAP and WRITE SAME(10/16)
 * with UNMAP supported, deallocated blocks read as zeros (LBPRZ=1).
 */
function logicalBlockProvisioning(): Buffer {
  const body = Buffer.alloc(4);
  body[0] = 0; // THRESHOLD EXPONENT: no thresholds
  body[1] = 0x80 | 0x40 | 0x20 | 0x04; // LBPU, LBPWS, LBPWS10, LBPRZ
  body[2] = 0x02; // PROVISIONING TYPE: thin
  return body;
}
