import * as encode from '../pdu/encode';
import { RESERVED_TAG } from '../pdu/opcodes';
import type { TextRequestPdu } from '../pdu/parse';
import { TextAccumulator, encodeTextPairs, parseTextPairs, splitSegments, type TextPairs } from '../pdu/text';
import type { PendingPdu } from './responses';

/**
 * Text request/response exchanges in full feature phase (RFC 7143 §11.10-11.11):
 * a request spread over PDUs with the C bit is gathered (bounded); an answer
 * longer than the initiator's MaxRecvDataSegmentLength goes out in pieces, each
 * fetched by an empty Text Request carrying our Target Transfer Tag.
 */
export class TextExchange {
  private readonly request = new TextAccumulator(65536);
  private pending?: { ttt: number; itt: number; segments: Buffer[] };

  handle(pdu: TextRequestPdu, ctx: { maxSegment: number; newTtt(): number; answer(pairs: TextPairs): TextPairs }): PendingPdu[] {
    if (pdu.ttt !== RESERVED_TAG && this.pending && this.pending.ttt === pdu.ttt && this.pending.itt === pdu.itt) {
      return [this.nextSegment(pdu.itt)];
    }
    // A new request (TTT 0xffffffff) resets any exchange left unfinished (§11.10.4).
    this.pending = undefined;
    this.request.add(pdu.data);
    if (pdu.continue) {
      const ttt = ctx.newTtt();
      return [{ status: true, build: (seq) => encode.textResponse({ final: false, continue: false, itt: pdu.itt, ttt, seq, data: Buffer.alloc(0) }) }];
    }
    const pairs = parseTextPairs(this.request.take());
    const segments = splitSegments(encodeTextPairs(ctx.answer(pairs)), ctx.maxSegment);
    if (segments.length === 1) {
      const data = segments[0];
      return [{ status: true, build: (seq) => encode.textResponse({ final: true, continue: false, itt: pdu.itt, ttt: RESERVED_TAG, seq, data }) }];
    }
    this.pending = { ttt: ctx.newTtt(), itt: pdu.itt, segments };
    return [this.nextSegment(pdu.itt)];
  }

  private nextSegment(itt: number): PendingPdu {
    const pending = this.pending as { ttt: number; itt: number; segments: Buffer[] };
    const data = pending.segments.shift() as Buffer;
    const last = pending.segments.length === 0;
    const ttt = last ? RESERVED_TAG : pending.ttt;
    if (last) this.pending = undefined;
    return { status: true, build: (seq) => encode.textResponse({ final: last, continue: !last, itt, ttt, seq, data }) };
  }
}
