import { createHash, randomBytes, randomInt, timingSafeEqual } from 'node:crypto';

/** CHAP with MD5, the one algorithm RFC 7143 §12.1.3 requires (CHAP_A=5, RFC 1994). */
export const CHAP_MD5 = '5';
/** Challenge length: RFC 7143 §12.1.3 asks for at least as long as the secret; 16 bytes covers any MD5 secret. */
const CHALLENGE_LENGTH = 16;
/** Longest binary value accepted in CHAP_R or CHAP_C. */
const MAX_BINARY_LENGTH = 1024;

export interface ChapChallenge {
  readonly id: number;
  readonly challenge: Buffer;
}

export function newChallenge(): ChapChallenge {
  return { id: randomInt(0, 256), challenge: randomBytes(CHALLENGE_LENGTH) };
}

/** Decodes a binary value: 0x-prefixed hex or 0b-prefixed base64 (RFC 7143 §6.1). */
export function parseBinary(value: string): Buffer | undefined {
  if (/^0[xX]([0-9a-fA-F]{2})+$/.test(value) && value.length <= 2 + 2 * MAX_BINARY_LENGTH) return Buffer.from(value.slice(2), 'hex');
  if (/^0[xX][0-9a-fA-F]+$/.test(value) && value.length <= 2 + 2 * MAX_BINARY_LENGTH) return Buffer.from(`0${value.slice(2)}`, 'hex');
  if (/^0[bB][A-Za-z0-9+/]+=*$/.test(value)) {
    const out = Buffer.from(value.slice(2), 'base64');
    return out.length > 0 && out.length <= MAX_BINARY_LENGTH ? out : undefined;
  }
  return undefined;
}

export const toHex = (data: Buffer): string => `0x${data.toString('hex')}`;

/** RFC 1994 §4.1: MD5 over the identifier, the secret and the challenge. */
export function chapResponse(id: number, secret: string, challenge: Buffer): Buffer {
  return createHash('md5').update(Buffer.from([id & 0xff])).update(secret, 'utf8').update(challenge).digest();
}

export function verifyResponse(expected: Buffer, received: Buffer): boolean {
  return expected.length === received.length && timingSafeEqual(expected, received);
}
