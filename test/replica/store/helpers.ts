import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { silentLogger } from '../../../src/common/logger';
import { openReplicaStore, type OpenReplicaStoreOptions } from '../../../src/replica/store';
import { BLOCK_SIZE } from '../../../src/replica/store-types';

export const MiB = 1 << 20;

export function tempDir(prefix = 'trireme-store-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** A maker of temp dirs that are all removed when the calling test file ends. */
export function tempDirs(prefix?: string): () => string {
  const dirs: string[] = [];
  after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
  return () => {
    const dir = tempDir(prefix);
    dirs.push(dir);
    return dir;
  };
}

export function open(dir: string, extra: Partial<OpenReplicaStoreOptions> = {}): ReturnType<typeof openReplicaStore> {
  return openReplicaStore({ dir, logger: silentLogger(), compaction: { enabled: false }, ...extra });
}

/** A block whose every byte is derived from (tag, lba), so misplaced data is visible. */
export function pattern(tag: number, lba: number, blocks = 1): Buffer {
  const b = Buffer.alloc(blocks * BLOCK_SIZE);
  for (let i = 0; i < blocks; i++) {
    const x = ((tag * 2654435761) ^ ((lba + i) * 40503)) >>> 0;
    for (let k = 0; k < BLOCK_SIZE; k += 4) b.writeUInt32LE((x + k) >>> 0, i * BLOCK_SIZE + k);
  }
  return b;
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
