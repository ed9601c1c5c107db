/**
 * Throughput of the replica data path: client -> TCP -> server -> store.
 * The server runs as a real `trireme replica` process (so client and server
 * each get a core, as in production), over the in-memory store and over the
 * disk store in a temporary directory. Reports 4 KiB random write and read
 * IOPS at queue depth 32 and 1 MiB sequential write MB/s at depth 8.
 *
 *   node dist/bench/replica-wire.js [--seconds N] [--store memory|disk|both]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicaClient } from '../src/replica/client/replica-client';
import { TRIREME_ENTRY } from './lib/trireme-cli';

const SIZE = 1024 * 1024 * 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function startServer(store: 'memory' | 'disk', dir: string): Promise<{ child: ChildProcess; port: number }> {
  const storeArgs = store === 'memory' ? ['--memory'] : ['--dir', join(dir, 'replica')];
  const child = spawn(process.execPath, [TRIREME_ENTRY, 'replica', ...storeArgs, '--size', String(SIZE), '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, TRIREME_LOG_LEVEL: 'warn' },
  });
  const port = await new Promise<number>((ok, fail) => {
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) ok((JSON.parse(line) as { dataPort: number }).dataPort);
    });
    child.once('exit', (code) => fail(new Error(`replica exited with ${code}`)));
  });
  return { child, port };
}

/** Runs `depth` workers issuing `op` until `seconds` pass; returns ops/s and the p99 latency in ms. */
async function run(seconds: number, depth: number, op: (i: number) => Promise<unknown>): Promise<{ rate: number; p99: number }> {
  const end = performance.now() + seconds * 1000;
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: depth }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        await op(next++);
        latencies.push(performance.now() - t);
      }
    }),
  );
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / seconds, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0 };
}

async function benchStore(store: 'memory' | 'disk', seconds: number): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-bench-'));
  const { child, port } = await startServer(store, dir);
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port, requestTimeoutMs: 30_000 });
  try {
    const small = Buffer.alloc(4096, 0xa5);
    const big = Buffer.alloc(1024 * 1024, 0x5a);
    const blocks = 64 * 1024; // a 256 MiB working set
    let seq = 0;
    const pick = (i: number): number => ((i * 2654435761) >>> 0) % blocks;
    const w4k = await run(seconds, 32, (i) => client.write(1, ++seq, pick(i) * 4096, small));
    const r4k = await run(seconds, 32, (i) => client.read(1, pick(i) * 4096, 4096));
    const w1m = await run(seconds, 8, (i) => client.write(1, ++seq, (i % 256) * big.length, big));
    const flushStart = performance.now();
    await client.flush(1);
    const flushMs = performance.now() - flushStart;
    const fmt = (n: number): string => n.toFixed(0).padStart(8);
    process.stdout.write(
      `${store.padEnd(7)} 4k write QD32 ${fmt(w4k.rate)} IOPS (p99 ${w4k.p99.toFixed(2)} ms) | ` +
        `4k read QD32 ${fmt(r4k.rate)} IOPS (p99 ${r4k.p99.toFixed(2)} ms) | ` +
        `1M write QD8 ${fmt(w1m.rate)} MB/s (p99 ${w1m.p99.toFixed(1)} ms) | final flush ${flushMs.toFixed(0)} ms\n`,
    );
  } finally {
    client.close();
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const seconds = Number(arg('seconds', '3'));
  const which = arg('store', 'both');
  for (const store of ['memory', 'disk'] as const) if (which === 'both' || which === store) await benchStore(store, seconds);
}

main().catch((err: unknown) => {
  process.stderr.write(`bench failed: ${String(err)}\n`);
  process.exit(1);
});
