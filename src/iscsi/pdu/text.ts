import { INVALID_TEXT, PduError } from './errors';

/** Text key=value pairs in order (RFC 7143 §6.1). */
export type TextPairs = Array<[key: string, value: string]>;

/** Longest key name (RFC 7143 §6.1: 63 bytes). */
const MAX_KEY_LENGTH = 63;
/**
 * Longest value we accept. §6.1 limits ordinary values to 255 bytes, but
 * binary CHAP values (§13.1 "large-binary-value") and SendTargets answers are
 * longer; 8192 covers them and bounds what one key can cost.
 */
const MAX_VALUE_LENGTH = 8192;
const KEY_PATTERN = /^[A-Za-z0-9.\-+@_]+$/;

/** Parses a complete text segment ("k=v\0k=v\0"). Throws PduError on malformed text. */
export function parseTextPairs(data: Buffer): TextPairs {
  const pairs: TextPairs = [];
  let start = 0;
  while (start < data.length) {
    let end = data.indexOf(0, start);
    if (end < 0) end = data.length;
    if (end > start) {
      const item = data.toString('utf8', start, end);
      const eq = item.indexOf('=');
      if (eq <= 0) throw new PduError(INVALID_TEXT, 'text item without key=value');
      const key = item.slice(0, eq);
      const value = item.slice(eq + 1);
      if (key.length > MAX_KEY_LENGTH || !KEY_PATTERN.test(key)) throw new PduError(INVALID_TEXT, 'invalid text key name');
      if (Buffer.byteLength(value) > MAX_VALUE_LENGTH) throw new PduError(INVALID_TEXT, `value of ${key} too long`);
      pairs.push([key, value]);
    }
    start = end + 1;
  }
  return pairs;
}

export function encodeTextPairs(pairs: TextPairs): Buffer {
  return Buffer.from(pairs.map(([k, v]) => `${k}=${v}\0`).join(''), 'utf8');
}

/**
 * Gathers a text segment sent over several PDUs with the C bit (RFC 7143 §6.1,
 * §11.10.2) up to a fixed bound, so a peer cannot grow it without limit.
 */
export class TextAccumulator {
  private parts: Buffer[] = [];
  private total = 0;

  constructor(private readonly maxBytes = 65536) {}

  get pending(): boolean {
    return this.total > 0;
  }

  add(data: Buffer): void {
    if (this.total + data.length > this.maxBytes) throw new PduError(INVALID_TEXT, `text exceeds ${this.maxBytes} bytes`);
    this.parts.push(data);
    this.total += data.length;
  }

  take(): Buffer {
    const out = Buffer.concat(this.parts, this.total);
    this.parts = [];
    this.total = 0;
    return out;
  }
}

/** Splits an answer into data segments no longer than the peer's MaxRecvDataSegmentLength. */
export function splitSegments(data: Buffer, max: number): Buffer[] {
  if (data.length <= max) return [data];
  const out: Buffer[] = [];
  for (let at = 0; at < data.length; at += max) out.push(data.subarray(at, Math.min(at + max, data.length)));
  return out;
}
