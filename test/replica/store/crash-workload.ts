import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { pattern } from './helpers';

/** The crash test's writes, a pure function of (seed, seq) so parent and child agree without talking. */
export const CRASH_VOLUME = 8 << 20;
const BLOCKS = CRASH_VOLUME / BLOCK_SIZE;

function hash(seed: number, seq: number, salt: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(seq, 0xc2b2ae35) ^ salt;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  return (h ^ (h >>> 15)) >>> 0;
}

export function crashWrite(seed: number, seq: number): { lba: number; blocks: number; data: Buffer } {
  const blocks = hash(seed, seq, 1) % 10 === 0 ? 1 + (hash(seed, seq, 2) % 128) : 1 + (hash(seed, seq, 2) % 4);
  const lba = hash(seed, seq, 3) % (BLOCKS - blocks);
  return { lba, blocks, data: pattern(seq, lba, blocks) };
}

/** Block contents after writes 1..lastSeq: lba -> seq of the write holding it. */
export function crashModel(seed: number, lastSeq: number): Map<number, number> {
  const m = new Map<number, number>();
  for (let seq = 1; seq <= lastSeq; seq++) {
    const w = crashWrite(seed, seq);
    for (let i = 0; i < w.blocks; i++) m.set(w.lba + i, seq);
  }
  return m;
}
