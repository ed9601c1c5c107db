/**
 * Throughput of the replica data path: client -> TCP -> server -> store.
 * The server runs as a real `trireme replica` process (so client and server
 * each get a core, as in production), over the in-memory store and over the
 * disk store in a temporary directory. Reports 4 KiB random write and read
 * IOPS at queue depth 32 and 1 MiB sequential write MB/s at depth 8, each with
 * the CPU time per operation of the client (this process) and of the replica
 * process (user + system from /proc/PID/stat): on a shared machine CPU time
 * per operation is steadier than throughput.
 *
 *   node dist/bench/replica-wire.js [--seconds N] [--store memory|disk|both] [--plain-replica]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReplicaClient } from '../src/replica/client/replica-client';
import { REPLICA_NODE_FLAGS, replicaEnv } from '../src/controller/orchestrator/volume-processes';
import { TRIREME_ENTRY } from './lib/trireme-cli';

const SIZE = 1024 * 1024 * 1024;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

async function startServer(store: 'memory' | 'disk', dir: string): Promise<{ child: ChildProcess; port: number }> {
  const storeArgs = store === 'memory' ? ['--memory'] : ['--dir', join(dir, 'replica')];
  // As the orchestrators start a replica (node flags, malloc settings); --plain-replica: without them, for comparison.
  const plain = process.argv.includes('--plain-replica');
  const child = spawn(process.execPath, [...(plain ? [] : REPLICA_NODE_FLAGS), TRIREME_ENTRY, 'replica', ...storeArgs, '--size', String(SIZE), '--listen', '127.0.0.1:0'], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...(plain ? process.env : replicaEnv(process.env)), TRIREME_LOG_LEVEL: 'warn' },
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

/** CPU seconds (user + system) process `pid` has used; /proc/PID/stat counts in USER_HZ (100) ticks. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

interface RunResult {
  rate: number;
  p99: number;
  /** CPU microseconds per operation: this process, the replica process. */
  clientUs: number;
  serverUs: number;
}

/** Runs `depth` workers issuing `op` until `seconds` pass; returns ops/s, the p99 latency in ms and CPU per op. */
async function run(seconds: number, depth: number, serverPid: number, op: (i: number) => Promise<unknown>): Promise<RunResult> {
  const cpu0 = process.cpuUsage();
  const server0 = cpuSeconds(serverPid);
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
  const cpu = process.cpuUsage(cpu0);
  const server = cpuSeconds(serverPid) - server0;
  const n = Math.max(latencies.length, 1);
  latencies.sort((a, b) => a - b);
  return { rate: latencies.length / seconds, p99: latencies[Math.floor(latencies.length * 0.99)] ?? 0, clientUs: (cpu.user + cpu.system) / n, serverUs: (server * 1e6) / n };
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
    const pid = child.pid as number;
    const w4k = await run(seconds, 32, pid, (i) => client.write(1, ++seq, pick(i) * 4096, small));
    const r4k = await run(seconds, 32, pid, (i) => client.read(1, pick(i) * 4096, 4096));
    const w1m = await run(seconds, 8, pid, (i) => client.write(1, ++seq, (i % 256) * big.length, big));
    const r1m = await run(seconds, 8, pid, (i) => client.read(1, (i % 256) * big.length, big.length));
    const flushStart = performance.now();
    await client.flush(1);
    const flushMs = performance.now() - flushStart;
    const fmt = (n: number): string => n.toFixed(0).padStart(8);
    const cpu = (r: RunResult): string => `cpu/op client ${r.clientUs.toFixed(1)} us, replica ${r.serverUs.toFixed(1)} us`;
    process.stdout.write(
      `${store.padEnd(7)} 4k write QD32 ${fmt(w4k.rate)} IOPS (p99 ${w4k.p99.toFixed(2)} ms; ${cpu(w4k)})\n` +
        `${store.padEnd(7)} 4k read QD32  ${fmt(r4k.rate)} IOPS (p99 ${r4k.p99.toFixed(2)} ms; ${cpu(r4k)})\n` +
        `${store.padEnd(7)} 1M write QD8  ${fmt(w1m.rate)} MB/s (p99 ${w1m.p99.toFixed(1)} ms; ${cpu(w1m)})\n` +
        `${store.padEnd(7)} 1M read QD8   ${fmt(r1m.rate)} MB/s (p99 ${r1m.p99.toFixed(1)} ms; ${cpu(r1m)}) | final flush ${flushMs.toFixed(0)} ms\n`,
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
