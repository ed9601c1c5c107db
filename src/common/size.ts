import { InvalidArgumentError } from './errors';

const UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kib: 1024,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** Parses sizes such as `4096`, `64M`, `4GiB`. Binary units only: a disk is sized in powers of two. */
export function parseSize(text: string): number {
  const match = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(text);
  if (!match) throw new InvalidArgumentError(`invalid size "${text}": expected a number with an optional unit (K, M, G, T)`);
  const unit = UNITS[match[2].toLowerCase()];
  if (unit === undefined) throw new InvalidArgumentError(`invalid size "${text}": unknown unit "${match[2]}"`);
  const value = Number(match[1]) * unit;
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`invalid size "${text}": too large`);
  return value;
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let i = 0;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i++;
  }
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ${units[i]}`;
}
