import type { OnReadOpts } from 'node:net';
import { FrameDecoder } from '../wire/frame-decoder';
import type { Frame } from '../wire/protocol';

/**
 * Socket reads go into one reused buffer of this size; a payload with at least
 * this much still to come is read straight into its own buffer instead.
 */
export const READ_BUFFER_SIZE = 64 * 1024;

export interface FrameSink {
  frame(frame: Frame): void;
  /** A protocol fault: the decoder threw and must be discarded with its connection. */
  fault(err: unknown): void;
  /** Bytes arrived (keep-alive bookkeeping). */
  heard(): void;
}

/**
 * Feeds a socket's bytes to a FrameDecoder through net's `onread` option, so
 * the reader chooses where each read lands: a reused buffer for headers and
 * small replies (no allocation per read; payloads are copied out of it), or
 * the unfilled tail of a large payload being assembled, which the kernel then
 * fills directly. A 1 MiB read reply thus costs one buffer and no copy, where
 * 'data' events cost sixteen 64 KiB chunks and a copy of each.
 */
export class FrameReader {
  private readonly scratch = Buffer.allocUnsafe(READ_BUFFER_SIZE);
  private readonly decoder: FrameDecoder;
  private direct: Buffer | undefined;
  private sink: FrameSink | undefined;
  private readonly deliver = (frame: Frame): void => this.sink?.frame(frame);

  constructor(maxPayload: number) {
    this.decoder = new FrameDecoder(maxPayload, { reusedInput: true });
  }

  /** The `onread` option for net.connect(). */
  get onread(): OnReadOpts {
    return { buffer: () => this.next(), callback: (n: number, buf: Uint8Array) => this.received(n, buf) };
  }

  attach(sink: FrameSink): void {
    this.sink = sink;
  }

  private next(): Buffer {
    this.direct = this.decoder.directTarget(READ_BUFFER_SIZE);
    return this.direct ?? this.scratch;
  }

  private received(n: number, buf: Uint8Array): boolean {
    const sink = this.sink;
    if (sink === undefined) return false;
    sink.heard();
    try {
      if (buf === this.direct) this.decoder.filledDirect(n, this.deliver);
      else this.decoder.push(this.scratch.subarray(0, n), this.deliver);
    } catch (err) {
      sink.fault(err);
    }
    return true;
  }
}
