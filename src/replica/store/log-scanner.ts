import { preadFull } from './fs-io';
import {
  RECORD_HEADER_SIZE,
  RECORD_MAGIC,
  RecordType,
  type RecordHeader,
  decodeRecordHeader,
  verifyBlock,
  verifyNamedPayload,
  BLOCK_SLOT,
} from './record-codec';
import type { Segment } from './segment-set';

const WINDOW = 4 << 20;

export interface ScannedRecord {
  offset: number;
  header: RecordHeader;
  name?: string;
}

export interface ScanResult {
  /** Offset just past the last good record. */
  end: number;
  /** Why scanning stopped before `to`. */
  bad?: string;
}

/** Sequential reader of one segment in large windows. */
class Window {
  private buf = Buffer.alloc(0);
  private start = 0;
  constructor(
    private readonly fd: number,
    private readonly limit: number,
  ) {}

  /** `len` bytes at `pos` (a view valid until the next call), or null past the limit. */
  async get(pos: number, len: number): Promise<Buffer | null> {
    if (pos + len > this.limit) return null;
    if (pos < this.start || pos + len > this.start + this.buf.length) {
      const size = Math.min(Math.max(WINDOW, len), this.limit - pos);
      const buf = Buffer.allocUnsafe(size);
      const n = await preadFull(this.fd, buf, pos);
      this.buf = buf.subarray(0, n);
      this.start = pos;
      if (n < len) return null;
    }
    return this.buf.subarray(pos - this.start, pos - this.start + len);
  }
}

/** Checks a whole record (header already decoded): every block CRC, or the name's CRC. */
function verifyRecord(rec: Buffer, h: RecordHeader, blocks: number): { ok: boolean; name?: string } {
  if (h.type === RecordType.Write || h.type === RecordType.Unmap) {
    if (!Number.isSafeInteger(h.lba) || h.lba < 0 || h.lba + h.count > blocks) return { ok: false };
  }
  if (h.type === RecordType.Write) {
    for (let i = 0; i < h.count; i++) if (!verifyBlock(rec, RECORD_HEADER_SIZE + i * BLOCK_SLOT, h.lba + i)) return { ok: false };
    return { ok: true };
  }
  if (h.type === RecordType.Snapshot || h.type === RecordType.Revert) {
    const name = verifyNamedPayload(rec, rec.subarray(RECORD_HEADER_SIZE));
    return name === null ? { ok: false } : { ok: true, name };
  }
  return { ok: true };
}

/**
 * Reads and verifies the records of `seg` in [from, to), calling `onRecord` for
 * each good one in order. Stops at the first bad or incomplete record.
 * `blocks` is the volume size in blocks (a record beyond it is bad).
 */
export async function scanSegment(
  seg: Segment,
  from: number,
  to: number,
  blocks: number,
  onRecord: ((r: ScannedRecord) => void) | null,
): Promise<ScanResult> {
  const win = new Window(seg.fd, to);
  let pos = from;
  while (pos < to) {
    const hb = await win.get(pos, RECORD_HEADER_SIZE);
    if (!hb) return { end: pos, bad: 'truncated record header' };
    const h = decodeRecordHeader(hb);
    if (typeof h === 'string') return { end: pos, bad: h };
    const rec = await win.get(pos, h.totalLen);
    if (!rec) return { end: pos, bad: 'truncated record' };
    const v = verifyRecord(rec, h, blocks);
    if (!v.ok) return { end: pos, bad: `bad record (type ${h.type}, seq ${h.seq})` };
    onRecord?.({ offset: pos, header: h, name: v.name });
    pos += h.totalLen;
  }
  return { end: pos };
}

/**
 * Whether any intact record starts after `from`: the difference between a torn
 * tail (a crash mid-append: nothing valid follows) and damage in the middle of
 * the log (valid records follow a bad one).
 */
export async function validRecordAfter(seg: Segment, from: number, to: number, blocks: number): Promise<boolean> {
  const magic = Buffer.alloc(4);
  magic.writeUInt32LE(RECORD_MAGIC);
  let pos = from + 1;
  while (pos + RECORD_HEADER_SIZE <= to) {
    const size = Math.min(WINDOW, to - pos);
    const buf = Buffer.allocUnsafe(size);
    const n = await preadFull(seg.fd, buf, pos);
    let at = buf.subarray(0, n).indexOf(magic);
    while (at >= 0) {
      const cand = pos + at;
      const hb = Buffer.allocUnsafe(RECORD_HEADER_SIZE);
      if ((await preadFull(seg.fd, hb, cand)) === RECORD_HEADER_SIZE) {
        const h = decodeRecordHeader(hb);
        if (typeof h !== 'string' && cand + h.totalLen <= to) {
          const rec = Buffer.allocUnsafe(h.totalLen);
          await preadFull(seg.fd, rec, cand);
          if (verifyRecord(rec, h, blocks).ok) return true;
        }
      }
      at = buf.indexOf(magic, at + 1);
      if (at > n - 4) break;
    }
    if (n < size || size <= RECORD_HEADER_SIZE) break;
    pos += size - 3;
  }
  return false;
}
