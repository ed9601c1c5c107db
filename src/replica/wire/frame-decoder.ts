import { decodeHeader } from './frame-codec';
import { HEADER_SIZE, type Frame, type FrameHeader } from './protocol';

/**
 * The framing state machine of the data path: bytes in, whole frames out.
 * Two states: collecting a header (at most HEADER_SIZE bytes, copied into one
 * reused buffer because they are decoded at once) and collecting a payload.
 * The header is validated, including its length against `maxPayload`, before
 * a single payload byte is buffered, so a hostile length costs nothing.
 *
 * Payloads are zero-copy when a payload lies within one input chunk: the frame
 * gets a slice of that chunk. This is safe because net.Socket hands out a new
 * buffer for every 'data' event and never reuses it. A payload that spans
 * chunks is assembled into one buffer allocated to its exact, checked length.
 * Either way the receiver owns the payload. Codecs do no I/O (STYLE.md rule 3);
 * errors are thrown as WireError and the decoder must then be discarded.
 */
export class FrameDecoder {
  private readonly headerBuf = Buffer.allocUnsafe(HEADER_SIZE);
  private headerFill = 0;
  private header: FrameHeader | undefined;
  private payload: Buffer | undefined;
  private payloadFill = 0;

  constructor(private readonly maxPayload: number) {}

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
      if (this.header !== undefined && this.header.payloadLength === 0) this.emit(Buffer.alloc(0), onFrame);
    }
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
      this.emit(chunk.subarray(at, at + header.payloadLength), onFrame);
      return at + header.payloadLength;
    }
    if (this.payload === undefined) this.payload = Buffer.allocUnsafe(header.payloadLength);
    const n = Math.min(header.payloadLength - this.payloadFill, available);
    chunk.copy(this.payload, this.payloadFill, at, at + n);
    this.payloadFill += n;
    if (this.payloadFill === header.payloadLength) this.emit(this.payload, onFrame);
    return at + n;
  }

  private emit(payload: Buffer, onFrame: (frame: Frame) => void): void {
    const frame: Frame = { ...(this.header as FrameHeader), payload };
    this.header = undefined;
    this.payload = undefined;
    this.payloadFill = 0;
    onFrame(frame);
  }
}
