/**
 * Single-level LUN encoding (SAM-5 §4.7, RFC 7143 §11.2.1.6): peripheral
 * device addressing for LUNs below 256, flat space addressing up to 16383.
 */
export function decodeLun(field: Buffer, offset = 8): number {
  const method = field[offset] >> 6;
  if (method === 0) return field[offset + 1];
  if (method === 1) return ((field[offset] & 0x3f) << 8) | field[offset + 1];
  // Other methods (logical unit / extended addressing) name no LUN we serve.
  return -1;
}

export function encodeLun(lun: number, into: Buffer, offset = 8): void {
  into.fill(0, offset, offset + 8);
  if (lun < 256) {
    into[offset + 1] = lun;
  } else {
    into[offset] = 0x40 | ((lun >> 8) & 0x3f);
    into[offset + 1] = lun & 0xff;
  }
}
