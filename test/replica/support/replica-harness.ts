import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { createRootLogger, type Logger } from '../../../src/common/logger';
import { createRegistry, type Registry } from '../../../src/common/metrics';
import { MemoryReplicaStore } from '../../../src/replica/memory-store';
import { startReplicaServer, type ReplicaServer } from '../../../src/replica/server/replica-server';
import type { ReplicaStore } from '../../../src/replica/store-types';
import { openReplicaStore } from '../../../src/replica/store';

/** A logger whose JSON lines tests can inspect. */
export function capturingLogger(level = 'info'): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { logger: createRootLogger({ level, destination }), lines };
}

export interface StoreKind {
  readonly name: string;
  open(options: { size: number; volumeId?: string; logger: Logger; registry: Registry }): Promise<{ store: ReplicaStore; cleanup(): void }>;
}

export const MEMORY: StoreKind = {
  name: 'memory store',
  async open(o) {
    return { store: new MemoryReplicaStore({ size: o.size, ...(o.volumeId ? { volumeId: o.volumeId } : {}) }), cleanup: () => undefined };
  },
};

/** The LevelDB + segment-file store in a fresh temporary directory. */
export const DISK: StoreKind = {
  name: 'disk store',
  async open(o) {
    const dir = mkdtempSync(join(tmpdir(), 'trireme-replica-test-'));
    const store = await openReplicaStore({ dir: join(dir, 'r'), size: o.size, ...(o.volumeId ? { volumeId: o.volumeId } : {}), logger: o.logger, registry: o.registry });
    return { store, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  },
};

export interface Harness {
  readonly server: ReplicaServer;
  readonly store: ReplicaStore;
  readonly registry: Registry;
  readonly lines: Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A replica server on 127.0.0.1 port 0 over a fresh store of `kind`. */
export async function startHarness(
  kind: StoreKind,
  options: { size?: number; volumeId?: string; grpc?: boolean; http?: boolean; data?: { maxInflightRequests?: number; maxInflightBytes?: number; maxPayload?: number } } = {},
): Promise<Harness> {
  const { logger, lines } = capturingLogger();
  const registry = createRegistry({ defaultMetrics: false });
  const { store, cleanup } = await kind.open({ size: options.size ?? 16 * 1024 * 1024, ...(options.volumeId ? { volumeId: options.volumeId } : {}), logger, registry });
  const server = await startReplicaServer({
    store,
    logger,
    registry,
    data: { host: '127.0.0.1', port: 0, ...(options.data ?? {}) },
    ...(options.grpc ? { grpc: { host: '127.0.0.1', port: 0 } } : {}),
    ...(options.http ? { http: { host: '127.0.0.1', port: 0 } } : {}),
  });
  return {
    server,
    store,
    registry,
    lines,
    close: async () => {
      await server.close();
      cleanup();
    },
  };
}

/** 4 KiB blocks whose bytes encode (block, version): a reader can tell which write it sees. */
export function blockPayload(block: number, version: number, blocks = 1): Buffer {
  const b = Buffer.alloc(4096 * blocks);
  for (let i = 0; i < blocks; i++) {
    const base = i * 4096;
    for (let j = 0; j < 4096; j += 16) {
      b.writeUInt32BE(block + i, base + j);
      b.writeUInt32BE(version, base + j + 4);
      b.writeUInt32BE(0x5452424b, base + j + 8); // 'TRBK'
      b.writeUInt32BE((block + i) ^ version ^ j, base + j + 12);
    }
  }
  return b;
}

/** Decodes a block written by blockPayload: its (block, version), 'zero' for zeros, or 'garbage'. */
export function identifyBlock(b: Buffer): { block: number; version: number } | 'zero' | 'garbage' {
  if (b.every((x) => x === 0)) return 'zero';
  const block = b.readUInt32BE(0);
  const version = b.readUInt32BE(4);
  return blockPayload(block, version).equals(b) ? { block, version } : 'garbage';
}
