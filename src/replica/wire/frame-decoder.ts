import { decodeHeader } from './frame-codec';
import { HEADER_SIZE, type Frame, type FrameHeader } from './protocol';

export interface FrameDecoderOptions {
  /**
   * The caller refills the same input buffer after push() returns (a socket
   * reading into one buffer of its own): every payload is then copied out.
   * Otherwise a payload that lies within one chunk is handed out as a view of
   * that chunk, which is safe because net.Socket gives every 'data' event a
   * buffer of its own and never reuses it.
   */
  readonly reusedInput?: boolean;
  /**
   * Allocates the buffer a payload spanning chunks is assembled in (exactly
   * `length` bytes, every one of them written before the frame is emitted).
   * A server returns these to a pool once the request is served.
   */
  readonly allocate?: (length: number) => Buffer;
}

const EMPTY = Buffer.alloc(0);

/**
 * The framing state machine of the data path: bytes in, whole frames out.
 * Two states: collecting a header (at most HEADER_SIZE bytes, copied into one
 * reused buffer because they are decoded at once) and collecting a payload.
 * The header is validated, including its length against `maxPayload`, before
 * a single payload byte is buffered, so a hostile length costs nothing.
 *
 * A payload that spans chunks is assembled into one buffer of its exact,
 * checked length, never zero-filled since every byte is written. A reader
 * that chooses where its socket reads land can ask for that buffer's unfilled
 * tail (directTarget) and read the rest of a large payload straight into it:
 * no copy and no intermediate chunk. Either way the receiver owns the payload.
 * Codecs do no I/O (STYLE.md rule 3); errors are thrown as WireError and the
 * decoder must then be discarded.
 */
export class FrameDecoder {
  private readonly headerBuf = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  private header: FrameHeader | undefined;
  private payload: Buffer | undefined;
  private payloadFill = 0;
  private readonly reusedInput: boolean;
  private readonly allocate: (length: number) => Buffer;

  constructor(
    private readonly maxPayload: number,
    options: FrameDecoderOptions = {},
  ) {
    this.reusedInput = options.reusedInput ?? false;
    this.allocate = options.allocate ?? ((length) => Buffer.allocUnsafe(length));
  }

  /** Bytes held for an incomplete frame (for in-flight accounting). */
  get bufferedBytes(): number {
    return this.headerFill + this.payloadFill;
  }

  /** Feeds one chunk; calls `onFrame` for each complete frame, in order. */
  push(chunk: Buffer, onFrame: (frame: Frame) => void): void {
    let at = 0;
    while (at < chunk.length) {
      if (this.header === undefined) at = this.takeHeader(chunk, at);
      else at = this.takePayload(chunk, at, onFrame);
      if (this.header !== undefined && this.header.payloadLength === 0) this.emit(EMPTY, onFrame);
    }
  }

  /**
   * The unfilled tail of the payload being assembled, when at least `minBytes`
   * of it remain: the next read may land there directly, then filledDirect()
   * accounts for it. Undefined when no large payload is in progress.
   */
  directTarget(minBytes: number): Buffer | undefined {
    const payload = this.payload;
    if (payload === undefined || payload.length - this.payloadFill < minBytes) return undefined;
    return payload.subarray(this.payloadFill);
  }

  /** Records `n` bytes read into the buffer directTarget() returned; emits the frame once it is whole. */
  filledDirect(n: number, onFrame: (frame: Frame) => void): void {
    const payload = this.payload;
    if (payload === undefined || n < 0 || this.payloadFill + n > payload.length) throw new RangeError(`no room for ${n} directly read bytes`);
    this.payloadFill += n;
    if (this.payloadFill === payload.length) this.emit(payload, onFrame);
  }

  private takeHeader(chunk: Buffer, at: number): number {
    if (this.headerFill === 0 && chunk.length - at >= HEADER_SIZE) {
      this.header = decodeHeader(chunk, at, this.maxPayload);
      return at + HEADER_SIZE;
    }
    const n = Math.min(HEADER_SIZE - this.headerFill, chunk.length - at);
    chunk.copy(this.headerBuf, this.headerFill, at, at + n);
    this.headerFill += n;
    if (this.headerFill === HEADER_SIZE) {
      this.header = decodeHeader(this.headerBuf, 0, this.maxPayload);
      this.headerFill = 0;
    }
    return at + n;
  }

  private takePayload(chunk: Buffer, at: number, onFrame: (frame: Frame) => void): number {
    const header = this.header as FrameHeader;
    const available = chunk.length - at;
    if (this.payload === undefined && available >= header.payloadLength) {
      const view = chunk.subarray(at, at + header.payloadLength);
      this.emit(this.reusedInput ? Buffer.from(view) : view, onFrame);
      return at + header.payloadLength;
    }
    if (this.payload === undefined) this.payload = this.allocate(header.payloadLength);
    const n = Math.min(header.payloadLength - this.payloadFill, available);
    chunk.copy(this.payload, this.payloadFill, at, at + n);
    this.payloadFill += n;
    if (this.payloadFill === header.payloadLength) this.emit(this.payload, onFrame);
    return at + n;
  }

  private emit(payload: Buffer, onFrame: (frame: Frame) => void): void {
    const h = this.header as FrameHeader;
    // One fixed shape for every frame (a spread made the consumers' property loads megamorphic).
    const frame: Frame = {
      opcode: h.opcode,
      flags: h.flags,
      status: h.status,
      requestId: h.requestId,
      epoch: h.epoch,
      seq: h.seq,
      offset: h.offset,
      length: h.length,
      payloadLength: h.payloadLength,
      payloadCrc: h.payloadCrc,
      payload,
    };
    this.header = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    onFrame(frame);
  }
}
