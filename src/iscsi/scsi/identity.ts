/** How Trireme names itself in INQUIRY data (SPC-4 §6.4.2): T10 vendor id, product, revision. */
export const VENDOR = 'TRIREME';
export const PRODUCT = 'VIRTUAL-DISK';
export const REVISION = '0001';
