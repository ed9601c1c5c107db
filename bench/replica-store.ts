/**
 * Replica-local throughput of the log store against raw file I/O on the same
 * disk in the same run, plus index memory, restart time and compaction rate.
 *
 *   node dist/bench/replica-store.js [--runs N] [--ops N] [--seq-mib N] [--restart-mib N] [--dir PATH]
 *     [--scatter-mib N] [--scatter-gib N] [--only throughput,scatter,compaction,restart]
 *
 * Workloads (queue depth 32 unless said):
 *   4k random writes, an fdatasync (flush) after every 32
 *   1 MiB sequential writes (depth 8), one flush at the end (timed)
 *   4k random reads of what the random writes left
 * Raw: the same pattern with pwrite/pread/fdatasync on one preallocated file.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { silentLogger } from '../src/common/logger';
import { openReplicaStore, type LogStore } from '../src/replica/store';
import { fdatasync, pread, pwritevFull } from '../src/replica/store/fs-io';
import { BLOCK_SIZE } from '../src/replica/store-types';
import { median, ratio } from './lib/stats';
import { renderTable } from './lib/table';

const MiB = 1 << 20;
const GiB = 1 << 30;

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : fallback;
}
function argStr(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

const RUNS = arg('runs', 3);
const OPS = arg('ops', 16384);
const SEQ_MIB = arg('seq-mib', 256);
const RESTART_MIB = arg('restart-mib', 1024);
const REGION = 256 * MiB; // random I/O spans this much of the volume
const ROOT = argStr('dir', os.tmpdir());
const SCATTER_MIB = arg('scatter-mib', 1024);
const SCATTER_GIB = arg('scatter-gib', 16);
const ONLY = new Set(argStr('only', 'throughput,scatter,compaction,restart').split(','));

/** Deterministic LBAs so store and raw see the same pattern. */
function lbas(n: number, seed: number): Uint32Array {
  const out = new Uint32Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) % (REGION / BLOCK_SIZE);
  }
  return out;
}

/** Runs ops in batches of `depth` concurrent calls, `after` once per batch; returns ops per second. */
async function batches(n: number, depth: number, op: (i: number) => Promise<unknown>, after?: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  for (let i = 0; i < n; i += depth) {
    const inflight: Promise<unknown>[] = [];
    for (let k = i; k < Math.min(n, i + depth); k++) inflight.push(op(k));
    await Promise.all(inflight);
    if (after) await after();
  }
  return n / ((performance.now() - t0) / 1000);
}

interface Target {
  name: string;
  write(i: number, off: number, buf: Buffer): Promise<unknown>;
  read(off: number, len: number): Promise<unknown>;
  flush(): Promise<unknown>;
  close(): Promise<void>;
}

/** Raw I/O through the same callback calls the store uses (fs.read, fs.writev, fs.fdatasync), so only the store's own work differs. */
async function rawTarget(dir: string): Promise<Target> {
  const fd = fs.openSync(path.join(dir, 'raw.img'), 'w+');
  fs.ftruncateSync(fd, REGION + SEQ_MIB * MiB);
  return {
    name: 'raw',
    write: (_i, off, buf) => pwritevFull(fd, [buf], off),
    read: (off, len) => pread(fd, Buffer.allocUnsafe(len), off),
    flush: () => fdatasync(fd),
    close: async () => fs.closeSync(fd),
  };
}

async function storeTarget(dir: string): Promise<{ target: Target; store: LogStore }> {
  const store = await openReplicaStore({ dir: path.join(dir, 'store'), size: REGION + SEQ_MIB * MiB, logger: silentLogger(), compaction: { enabled: false } });
  let seq = 0;
  return {
    store,
    target: {
      name: 'store',
      write: (_i, off, buf) => store.write(0, ++seq, off, buf),
      read: (off, len) => store.read(off, len),
      flush: () => store.flush(0),
      close: () => store.close(),
    },
  };
}

interface Round {
  randWrite: number;
  seqWrite: number;
  randRead: number;
  /** CPU time of the whole process (loop and I/O threads) per op, in µs: steadier than IOPS on a busy host. */
  writeCpu: number;
  seqCpu: number;
  readCpu: number;
}

/** Runs `fn` and returns its result with the process CPU time it took per op, in µs. */
async function cpuPerOp<T>(ops: number, fn: () => Promise<T>): Promise<[T, number]> {
  const c0 = process.cpuUsage();
  const out = await fn();
  const c = process.cpuUsage(c0);
  return [out, (c.user + c.system) / ops];
}

async function workload(t: Target, seed: number): Promise<Round> {
  const addr = lbas(OPS, seed);
  const block = Buffer.alloc(BLOCK_SIZE, seed & 0xff);
  const [randWrite, writeCpu] = await cpuPerOp(OPS, () => batches(OPS, 32, (i) => t.write(i, addr[i] * BLOCK_SIZE, block), () => t.flush()));
  const big = Buffer.alloc(MiB, 7);
  // Timed to stable storage: without the final flush raw would measure page-cache copies only.
  const t0 = performance.now();
  const [, seqCpu] = await cpuPerOp(SEQ_MIB, async () => {
    await batches(SEQ_MIB, 8, (i) => t.write(i, REGION + i * MiB, big));
    await t.flush();
  });
  const seqRate = SEQ_MIB / ((performance.now() - t0) / 1000);
  // Reads of the blocks the random writes touched, in another order (never-written blocks would flatter the store: it reads them without I/O).
  const [randRead, readCpu] = await cpuPerOp(OPS, () => batches(OPS, 32, (i) => t.read(addr[(i * 7919) % OPS] * BLOCK_SIZE, BLOCK_SIZE)));
  return { randWrite, seqWrite: seqRate, randRead, writeCpu, seqCpu, readCpu };
}

async function throughput(): Promise<void> {
  const raw: Round[] = [];
  const log: Round[] = [];
  let indexPerGiB = 0;
  for (let run = 0; run < RUNS; run++) {
    for (const kind of run % 2 === 0 ? ['raw', 'store'] : ['store', 'raw']) {
      const dir = fs.mkdtempSync(path.join(ROOT, 'trireme-bench-'));
      try {
        if (kind === 'raw') {
          const t = await rawTarget(dir);
          raw.push(await workload(t, run + 1));
          await t.close();
        } else {
          const { target, store } = await storeTarget(dir);
          log.push(await workload(target, run + 1));
          // Index after OPS random 4k writes over 256 MiB plus the sequential run.
          const written = OPS * BLOCK_SIZE + SEQ_MIB * MiB;
          indexPerGiB = (store.indexBytes() / written) * GiB;
          await target.close();
        }
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const m = (xs: Round[], k: keyof Round): number => median(xs.map((x) => x[k]));
  const rows = [
    ['4k random write, flush/32 (IOPS)', m(raw, 'randWrite'), m(log, 'randWrite'), ratio(m(log, 'randWrite'), m(raw, 'randWrite'))],
    ['1 MiB sequential write (MiB/s)', m(raw, 'seqWrite'), m(log, 'seqWrite'), ratio(m(log, 'seqWrite'), m(raw, 'seqWrite'))],
    ['4k random read (IOPS)', m(raw, 'randRead'), m(log, 'randRead'), ratio(m(log, 'randRead'), m(raw, 'randRead'))],
    ['4k random write, CPU µs per write (lower is better)', m(raw, 'writeCpu'), m(log, 'writeCpu'), ratio(m(log, 'writeCpu'), m(raw, 'writeCpu'))],
    ['1 MiB sequential write, CPU µs per MiB (lower is better)', m(raw, 'seqCpu'), m(log, 'seqCpu'), ratio(m(log, 'seqCpu'), m(raw, 'seqCpu'))],
    ['4k random read, CPU µs per read (lower is better)', m(raw, 'readCpu'), m(log, 'readCpu'), ratio(m(log, 'readCpu'), m(raw, 'readCpu'))],
  ];
  process.stdout.write(`medians of ${RUNS} runs, ${OPS} random ops over ${REGION / MiB} MiB, ${SEQ_MIB} MiB sequential\n`);
  process.stdout.write(`${renderTable(['workload', 'raw file', 'log store', 'store/raw'], rows)}\n`);
  process.stdout.write(`index memory (mixed random + sequential): ${(indexPerGiB / MiB).toFixed(2)} MiB per GiB written\n`);
}

/** A collector to settle the heap before measuring it (the flag is set at run time, so a plain `node` runs the bench). */
function gcFunction(): () => void {
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

async function settledMemory(gc: () => void): Promise<number> {
  for (let k = 0; k < 3; k++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

/** Index memory for 4k writes scattered at random over a volume much larger than what they write. */
async function scatter(): Promise<void> {
  const gc = gcFunction();
  const dir = fs.mkdtempSync(path.join(ROOT, 'trireme-bench-'));
  try {
    const size = SCATTER_GIB * GiB;
    const store = await openReplicaStore({ dir, size, logger: silentLogger(), compaction: { enabled: false } });
    const n = (SCATTER_MIB * MiB) / BLOCK_SIZE;
    const buf = Buffer.alloc(BLOCK_SIZE, 1);
    const addr = new Uint32Array(n).map((_, i) => ((i * 2654435761) >>> 0) % (size / BLOCK_SIZE));
    const before = await settledMemory(gc);
    await batches(n, 64, (i) => store.write(0, i + 1, addr[i] * BLOCK_SIZE, buf));
    const model = store.indexBytes();
    const heap = (await settledMemory(gc)) - before;
    await store.close();
    const perGiB = (bytes: number): string => ((bytes / (SCATTER_MIB * MiB)) * 1024).toFixed(2);
    process.stdout.write(
      `index memory, ${SCATTER_MIB} MiB of 4k writes scattered over ${SCATTER_GIB} GiB: ${(model / MiB).toFixed(2)} MiB = ${perGiB(model)} MiB per GiB written ` +
        `(process heap grew ${(heap / MiB).toFixed(2)} MiB = ${perGiB(heap)} MiB per GiB, index and everything else)\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** Child mode: fills a store with sequential 1 MiB writes, flushes, then dies by SIGKILL (no checkpoint at close). */
async function fillAndDie(dir: string, mib: number, checkpointBytes: number): Promise<void> {
  const store = await openReplicaStore({ dir, size: mib * MiB, logger: silentLogger(), compaction: { enabled: false }, checkpointBytes });
  const big = Buffer.alloc(MiB, 3);
  await batches(mib, 8, (i) => store.write(0, i + 1, i * MiB, big));
  await store.flush(0);
  process.kill(process.pid, 'SIGKILL');
}

async function restart(): Promise<void> {
  const rows: (string | number)[][] = [];
  for (const [label, ckpt] of [
    ['after SIGKILL, checkpoint every 256 MiB', 256 * MiB],
    ['after SIGKILL, no checkpoint (full replay)', Number.MAX_SAFE_INTEGER],
  ] as const) {
    const dir = fs.mkdtempSync(path.join(ROOT, 'trireme-bench-'));
    try {
      await new Promise<void>((resolve) => {
        const child = spawn(process.execPath, [__filename, '--fill-and-die', dir, String(RESTART_MIB), String(ckpt)], { stdio: 'inherit' });
        child.on('exit', () => resolve());
      });
      const t0 = performance.now();
      const store = await openReplicaStore({ dir, logger: silentLogger(), compaction: { enabled: false } });
      const crashed = performance.now() - t0;
      const lastSeq = store.info().lastSeq;
      await store.close();
      const t1 = performance.now();
      const again = await openReplicaStore({ dir, logger: silentLogger(), compaction: { enabled: false } });
      const clean = performance.now() - t1;
      await again.close();
      rows.push([label, lastSeq, crashed, clean]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  process.stdout.write(`restart of ${RESTART_MIB} MiB of log (open verifies every record CRC; replay applies the tail after the checkpoint)\n`);
  process.stdout.write(`${renderTable(['case', 'records', 'open after crash (ms)', 'open after clean close (ms)'], rows)}\n`);
}

async function compaction(): Promise<void> {
  const dir = fs.mkdtempSync(path.join(ROOT, 'trireme-bench-'));
  try {
    const size = 256 * MiB;
    const store = await openReplicaStore({ dir, size, logger: silentLogger(), compaction: { enabled: false, bytesPerSecond: Infinity } });
    const buf = Buffer.alloc(64 * 1024, 5);
    let seq = 0;
    // Write the volume twice in 64 KiB pieces, the second time only every other piece: half of the first pass dies.
    await batches(size / buf.length, 16, (i) => store.write(0, ++seq, i * buf.length, buf));
    await batches(size / buf.length / 2, 16, (i) => store.write(0, ++seq, i * 2 * buf.length, buf));
    await store.flush(0);
    const before = store.space(true);
    const t0 = performance.now();
    const r = await store.compact({ minDeadRatio: 0.1 });
    const secs = (performance.now() - t0) / 1000;
    const after = store.space(true);
    await store.close();
    const mib = (n: number): string => (n / MiB).toFixed(0);
    process.stdout.write(
      `compaction (unthrottled): ${r.segmentsFreed} segments (${mib(r.bytesFreed + r.bytesCopied)} MiB) in ${secs.toFixed(2)} s: ` +
        `copied ${mib(r.bytesCopied)} MiB live, freed ${mib(r.bytesFreed)} MiB = ${((r.bytesFreed + r.bytesCopied) / MiB / secs).toFixed(0)} MiB/s of segments processed; ` +
        `log ${mib(before.totalBytes)} -> ${mib(after.totalBytes)} MiB\n`,
    );
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (process.argv[2] === '--fill-and-die') return fillAndDie(process.argv[3], Number(process.argv[4]), Number(process.argv[5]));
  if (ONLY.has('throughput')) await throughput();
  if (ONLY.has('scatter')) await scatter();
  if (ONLY.has('compaction')) await compaction();
  if (ONLY.has('restart')) await restart();
  return undefined;
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err)}\n`);
  process.exit(1);
});
