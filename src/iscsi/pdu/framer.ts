import { crc32c } from '@node-rs/crc32';
import { BHS_LENGTH } from './opcodes';
import { HEADER_DIGEST, PDU_TOO_LARGE, PduError } from './errors';

/**
 * One PDU as framed off the wire. A segment that arrived whole in one chunk is
 * a view into that chunk, any other a copy: either way no one else writes into
 * it, since net.Socket hands out a fresh buffer per read and callers of
 * push()/write() give up the chunks they pass. A view keeps its chunk (one
 * socket read) alive as long as it is held.
 */
export interface RawPdu {
  readonly bhs: Buffer;
  /** Additional Header Segments, possibly empty (RFC 7143 §11.2.2). */
  readonly ahs: Buffer;
  /** The data segment without its padding. */
  readonly data: Buffer;
  /** False when a data digest was negotiated and did not match (answered with Reject). */
  readonly dataDigestOk: boolean;
}

export interface FramerLimits {
  /** Our MaxRecvDataSegmentLength: a longer data segment is refused before it is buffered. */
  maxDataSegmentLength: number;
  headerDigest: boolean;
  dataDigest: boolean;
}

/** Round up to the 4-byte boundary every segment is padded to (RFC 7143 §11.2). */
export const pad4 = (n: number): number => (n + 3) & ~3;

/** The iSCSI digest: CRC32C (RFC 7143 §13.1, RFC 3720 Appendix B.4), sent least significant byte first. */
export function digestOf(...parts: Buffer[]): number {
  let crc = 0;
  for (const part of parts) crc = crc32c(part, crc);
  return crc >>> 0;
}

const EMPTY = Buffer.alloc(0);

/**
 * A queue of received chunks that hands out exactly-sized segments: a view
 * when the segment lies within one chunk (the common case, and no copy or
 * allocation per PDU), a copy when it spans chunks.
 */
class ChunkQueue {
  private chunks: Buffer[] = [];
  private head = 0;
  length = 0;

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.length += chunk.length;
  }

  take(n: number): Buffer {
    if (n === 0) return EMPTY;
    const first = this.chunks[0];
    if (first.length - this.head >= n) {
      const view = first.subarray(this.head, this.head + n);
      this.head += n;
      if (this.head === first.length) {
        this.chunks.shift();
        this.head = 0;
      }
      this.length -= n;
      return view;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0];
      const count = Math.min(n - filled, chunk.length - this.head);
      chunk.copy(out, filled, this.head, this.head + count);
      filled += count;
      this.head += count;
      if (this.head === chunk.length) {
        this.chunks.shift();
        this.head = 0;
      }
    }
    this.length -= n;
    return out;
  }
}

type State =
  | { kind: 'bhs' }
  | { kind: 'header'; bhs: Buffer; ahsLength: number }
  | { kind: 'data'; bhs: Buffer; ahs: Buffer; dataLength: number };

/**
 * The framing state machine (RFC 7143 §11.2): BHS, AHS, header digest, data
 * segment with padding, data digest. It never buffers more than one header and
 * one data segment that passed the length check, so a peer announcing a huge
 * length is refused before any memory is spent on it. No I/O, no logging.
 */
export class PduFramer {
  private readonly queue = new ChunkQueue();
  private state: State = { kind: 'bhs' };

  constructor(readonly limits: FramerLimits) {}

  /** Bytes received but not yet handed out as a PDU. */
  get buffered(): number {
    return this.queue.length;
  }

  /** Queues received bytes without framing them; `next()` pulls PDUs at the caller's pace. */
  write(chunk: Buffer): void {
    this.queue.push(chunk);
  }

  /** Feeds received bytes; returns every PDU they complete. Throws PduError on a framing fault. */
  push(chunk: Buffer): RawPdu[] {
    this.queue.push(chunk);
    const out: RawPdu[] = [];
    for (let pdu = this.next(); pdu; pdu = this.next()) out.push(pdu);
    return out;
  }

  /**
   * Pulls at most one PDU. Callers that apply a new digest setting right after
   * a PDU (the last login response) pull one at a time.
   */
  next(): RawPdu | undefined {
    for (;;) {
      const state = this.state;
      if (state.kind === 'bhs') {
        if (this.queue.length < BHS_LENGTH) return undefined;
        const bhs = this.queue.take(BHS_LENGTH);
        this.state = { kind: 'header', bhs, ahsLength: bhs[4] * 4 };
      } else if (state.kind === 'header') {
        const digestLength = this.limits.headerDigest ? 4 : 0;
        if (this.queue.length < state.ahsLength + digestLength) return undefined;
        const ahs = this.queue.take(state.ahsLength);
        if (digestLength) {
          const received = this.queue.take(4).readUInt32LE(0);
          if (received !== digestOf(state.bhs, ahs)) throw new PduError(HEADER_DIGEST, 'header digest mismatch', { header: state.bhs });
        }
        const dataLength = state.bhs.readUIntBE(5, 3);
        if (dataLength > this.limits.maxDataSegmentLength) {
          throw new PduError(PDU_TOO_LARGE, `data segment of ${dataLength} bytes exceeds MaxRecvDataSegmentLength ${this.limits.maxDataSegmentLength}`, {
            header: state.bhs,
          });
        }
        this.state = { kind: 'data', bhs: state.bhs, ahs, dataLength };
      } else {
        const digestLength = this.limits.dataDigest && state.dataLength > 0 ? 4 : 0;
        const padded = pad4(state.dataLength);
        if (this.queue.length < padded + digestLength) return undefined;
        const segment = this.queue.take(padded);
        let dataDigestOk = true;
        if (digestLength) dataDigestOk = this.queue.take(4).readUInt32LE(0) === digestOf(segment);
        this.state = { kind: 'bhs' };
        const data = padded === state.dataLength ? segment : segment.subarray(0, state.dataLength);
        return { bhs: state.bhs, ahs: state.ahs, data, dataDigestOk };
      }
    }
  }
}
