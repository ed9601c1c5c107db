import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { parseSize } from '../src/common/size';
import { CONTROLLER_NODE_FLAGS, REPLICA_NODE_FLAGS, controllerEnv, replicaEnv } from '../src/controller/orchestrator/volume-processes';
import { startTgtd } from '../test/support/tgtd';
import { MATRIX } from './target-vs-tgtd';
import { DEPTH_NOTE, fioArgs, fioHasLibiscsi, parseFioJson, runFio, type FioJob, type FioResult } from './lib/fio';
import { median, ratio } from './lib/stats';
import { renderTable, type Cell } from './lib/table';
import { TRIREME_ENTRY } from './lib/trireme-cli';

// A 3-replica Trireme volume (three `trireme replica` processes and one
// `trireme controller`, real TCP between them) against tgtd over one file and
// against raw file I/O (fio's libaio engine on the same kind of file), with the
// fio matrix of bench/target-vs-tgtd.ts. Also the resident memory of the
// controller and the replicas at idle with a 4 GiB volume.
//
// Throughput on a shared 2-core machine is noisy; CPU time per I/O is not.
// Each served run also reports the CPU (user + system, from /proc/PID/stat)
// that the serving processes spent per I/O during the measured part of the
// run: tgtd's one process, Trireme's controller plus its three replicas.


function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as { port: number }).port;
      server.close(() => resolve(port));
    });
  });
}

/** Starts `trireme ARGS` and resolves with the process and its parsed JSON ready line. */
function startTrireme(args: string[]): Promise<{ child: ChildProcess; ready: Record<string, unknown> }> {
  // Replicas and the controller run as the orchestrators run them: same node flags, same malloc settings (--plain-replica: replicas without, to compare).
  const replica = args[0] === 'replica' && !process.argv.includes('--plain-replica');
  const controller = args[0] === 'controller';
  const env = { ...(replica ? replicaEnv(process.env) : controller ? controllerEnv(process.env) : process.env), TRIREME_LOG_LEVEL: 'warn' };
  const node = replica ? REPLICA_NODE_FLAGS : controller ? CONTROLLER_NODE_FLAGS : [];
  const child = spawn(process.execPath, [...node, TRIREME_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(() => reject(new Error(`trireme ${args[0]} not ready in 60 s`)), 60_000);
    child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) {
        clearTimeout(timer);
        resolve({ child, ready: JSON.parse(line) as Record<string, unknown> });
      }
    });
    child.once('exit', (code) => reject(new Error(`trireme ${args[0]} exited with ${code}: ${err}`)));
  });
}

function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function rssBytes(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match ? Number(match[1]) * 1024 : Number.NaN;
}

/** Clock ticks per second of /proc/PID/stat times (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process has used so far; its children are not counted. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name, which may itself hold spaces.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
}

/**
 * Runs one fio job and measures the CPU the serving processes spend during its
 * measured part: sampled once the ramp is over and again when fio exits.
 */
async function runMeasured(run: () => Promise<FioResult>, pids: readonly number[], rampSec: number): Promise<Measured> {
  const total = (): number => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  let start = total();
  let started = performance.now();
  const timer = setTimeout(() => {
    start = total();
    started = performance.now();
  }, rampSec * 1000);
  try {
    const result = await run();
    const cpu = total() - start;
    const seconds = (performance.now() - started) / 1000;
    // fio's ios count the measured seconds only; scale to the span the CPU was sampled over.
    const ios = result.iops * seconds;
    return { ...result, cpuUsPerOp: ios > 0 ? (cpu * 1e6) / ios : Number.NaN };
  } finally {
    clearTimeout(timer);
  }
}

interface Measured extends FioResult {
  /** CPU microseconds per I/O summed over the serving processes; NaN for the raw file. */
  readonly cpuUsPerOp: number;
}

interface Volume {
  url: string;
  controller: ChildProcess;
  replicas: ChildProcess[];
  stop(): Promise<void>;
}

async function startVolume(dir: string, size: number, replicaCount = 3): Promise<Volume> {
  // Replicas bind port 0 and report theirs: choosing ports up front races with their own ephemeral gRPC ports.
  const started = await Promise.all(Array.from({ length: replicaCount }, (_, i) => startTrireme(['replica', '--dir', join(dir, `replica-${i}`), '--listen', '127.0.0.1:0', '--size', String(size)])));
  const replicas = started.map((r) => r.child);
  const [portal, management, metrics] = [await freePort(), await freePort(), await freePort()];
  const args = ['controller', '--volume', 'bench', '--size', String(size), '--portal', `127.0.0.1:${portal}`, '--management', `127.0.0.1:${management}`, '--metrics', `127.0.0.1:${metrics}`];
  for (const r of started) args.push('--replica', `127.0.0.1:${String(r.ready.dataPort)}`);
  const controller = (await startTrireme(args)).child;
  return {
    url: `iscsi://127.0.0.1:${portal}/iqn.2026-11.io.trireme:bench/0`,
    controller,
    replicas,
    stop: async () => {
      await stop(controller);
      await Promise.all(replicas.map(stop));
    },
  };
}

/** fio on a plain file: the same job with the libaio engine, page cache included like the replicas' logs. */
function runFioOnFile(job: FioJob, file: string, size: number, runtimeSec: number, rampSec: number): Promise<FioResult> {
  const args = fioArgs(job, { url: 'unused', runtimeSec, rampSec, size })
    .filter((a) => !a.startsWith('--ioengine=') && !a.startsWith('--filename='))
    .concat(['--ioengine=libaio', `--filename=${file}`]);
  return new Promise((resolve, reject) => {
    execFile('fio', args, { maxBuffer: 16 * 1024 * 1024, encoding: 'utf8', timeout: (runtimeSec + rampSec + 60) * 1000 }, (err, stdout) => {
      if (err) reject(err);
      else resolve(parseFioJson(job, stdout));
    });
  });
}

async function measure(kind: string, dir: string, size: number, jobs: readonly FioJob[], runtimeSec: number, rampSec: number): Promise<Measured[]> {
  const results: Measured[] = [];
  if (kind === 'file') {
    const file = join(dir, 'raw.img');
    writeFileSync(file, '');
    truncateSync(file, size);
    for (const job of jobs) results.push({ ...(await runFioOnFile(job, file, size, runtimeSec, rampSec)), cpuUsPerOp: Number.NaN });
    rmSync(file, { force: true });
    return results;
  }
  if (kind === 'tgtd') {
    const file = join(dir, 'tgtd.img');
    writeFileSync(file, '');
    truncateSync(file, size);
    const tgtd = await startTgtd({ backingFile: file });
    try {
      const pids = [tgtd.process.pid as number];
      for (const job of jobs) results.push(await runMeasured(() => runFio(job, { url: tgtd.url(), runtimeSec, rampSec }), pids, rampSec));
    } finally {
      await tgtd.stop();
      rmSync(file, { force: true });
    }
    return results;
  }
  const volumeDir = join(dir, `volume-${Date.now()}`);
  const volume = await startVolume(volumeDir, size);
  try {
    const pids = [volume.controller, ...volume.replicas].map((p) => p.pid as number);
    for (const job of jobs) results.push(await runMeasured(() => runFio(job, { url: volume.url, runtimeSec, rampSec }), pids, rampSec));
  } finally {
    await volume.stop();
    rmSync(volumeDir, { recursive: true, force: true });
  }
  return results;
}

/**
 * The write burst before the idle measurement: idle means a volume that has
 * served writes and is still connected, so the heap growth a burst leaves
 * behind (young generation, socket buffers, LevelDB memtable) is counted.
 * Bounded: a few seconds each, within the first 512 MiB.
 */
const IDLE_BURST: readonly FioJob[] = [
  { name: 'idle-burst-write-1m', rw: 'write', bs: 1024 * 1024, iodepth: 8 },
  { name: 'idle-burst-randwrite-4k', rw: 'randwrite', bs: 4096, iodepth: 32 },
];

/** VmRSS of the controller and each replica after a write burst, then `idleMs` with the volume still connected. */
async function idleFootprint(dir: string, size: number, idleMs: number): Promise<{ controller: number; replicas: number[] }> {
  const volumeDir = join(dir, `idle-${Date.now()}`);
  const volume = await startVolume(volumeDir, size);
  try {
    for (const job of IDLE_BURST) await runFio(job, { url: volume.url, runtimeSec: 3, rampSec: 0, size: 512 * 1024 * 1024 });
    await new Promise((r) => setTimeout(r, idleMs));
    return { controller: rssBytes(volume.controller.pid as number), replicas: volume.replicas.map((r) => rssBytes(r.pid as number)) };
  } finally {
    await volume.stop();
    rmSync(volumeDir, { recursive: true, force: true });
  }
}

/** Median idle RSS over `repeat` fresh volumes, one row per process role. */
async function idleRows(dir: string, size: number, repeat: number): Promise<{ controller: number; replicas: number[] }> {
  const runs: { controller: number; replicas: number[] }[] = [];
  for (let i = 0; i < repeat; i++) runs.push(await idleFootprint(dir, size, 10_000));
  return { controller: median(runs.map((r) => r.controller)), replicas: runs[0].replicas.map((_, i) => median(runs.map((r) => r.replicas[i]))) };
}

/** What the fio matrix runs against, in table order. */
const SUBJECTS = ['file', 'tgtd', 'trireme'] as const;

async function main(argv: string[]): Promise<void> {
  const o = new Command('volume-vs-tgtd')
    .option('--size <size>', 'volume / file size for the fio matrix', '1G')
    .option('--idle-size <size>', 'volume size for the idle memory measurement', '4G')
    .option('--runtime <seconds>', 'measured seconds per fio run', '10')
    .option('--ramp <seconds>', 'warm-up seconds per fio run', '2')
    .option('--repeat <n>', 'runs per job and subject (medians)', '1')
    .option('--jobs <names>', 'comma-separated subset of the matrix')
    .option('--subjects <names>', `comma-separated subset of ${SUBJECTS.join(',')} (a left-out one shows as -)`, SUBJECTS.join(','))
    .option('--no-idle', 'skip the idle memory measurement')
    .option('--json <path>', 'also write the medians as JSON')
    .option('--idle-only', 'measure only the idle RSS (median of --repeat fresh volumes)')
    .option('--plain-replica', 'start replicas without the node flags and malloc settings the orchestrators give them')
    .parse(argv)
    .opts<{ size: string; idleSize: string; runtime: string; ramp: string; repeat: string; jobs?: string; subjects: string; idle: boolean; idleOnly?: boolean; json?: string }>();
  const size = parseSize(o.size);
  const [runtimeSec, rampSec, repeat] = [Number(o.runtime), Number(o.ramp), Number(o.repeat)];
  const wanted = o.jobs?.split(',').map((s) => s.trim());
  const jobs = wanted ? MATRIX.filter((j) => wanted.includes(j.name)) : MATRIX;
  if (jobs.length === 0) throw new Error('--jobs matched nothing');
  const subjects = o.subjects.split(',').map((s) => s.trim());
  const unknown = subjects.filter((s) => !(SUBJECTS as readonly string[]).includes(s));
  if (unknown.length > 0 || subjects.length === 0) throw new Error(`--subjects: unknown ${unknown.join(',') || '(none given)'}; expected some of ${SUBJECTS.join(',')}`);
  if (!(await fioHasLibiscsi())) throw new Error('fio lacks the libiscsi engine: run scripts/install-fio.sh as root');
  const dir = mkdtempSync(join(tmpdir(), 'trireme-volume-bench-'));
  mkdirSync(dir, { recursive: true });
  const mib = (b: number): string => `${(b / 1024 / 1024).toFixed(1)} MiB`;
  const printIdle = (idle: { controller: number; replicas: number[] }, runs: number): void => {
    process.stdout.write(`idle RSS with a ${o.idleSize} volume (VmRSS after a write burst and 10 s idle, median of ${runs}): controller ${mib(idle.controller)}, replicas ${idle.replicas.map(mib).join(', ')}\n`);
  };
  if (o.idleOnly) {
    try {
      printIdle(await idleRows(dir, parseSize(o.idleSize), repeat), repeat);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    return;
  }
  try {
    const runs = new Map<string, Measured[][]>(SUBJECTS.map((k) => [k, []]));
    for (let rep = 0; rep < repeat; rep++) for (const kind of subjects) runs.get(kind)?.push(await measure(kind, dir, size, jobs, runtimeSec, rampSec));
    const rows: Cell[][] = [];
    const json: unknown[] = [];
    const med = (values: number[]): number => (values.length > 0 ? median(values) : Number.NaN);
    for (const [i, job] of jobs.entries()) {
      const [file, tgtd, trireme] = SUBJECTS.map((k) => {
        const series = (runs.get(k) ?? []).map((r) => r[i]);
        return { iops: med(series.map((r) => r.iops)), bw: med(series.map((r) => r.bandwidth)), p99: med(series.map((r) => r.p99Us)), cpuUsPerOp: med(series.map((r) => r.cpuUsPerOp)) };
      });
      rows.push([job.name, file.iops, tgtd.iops, trireme.iops, ratio(trireme.iops, tgtd.iops), ratio(trireme.iops, file.iops), trireme.p99, tgtd.cpuUsPerOp, trireme.cpuUsPerOp]);
      json.push({ job, file, tgtd, trireme });
    }
    const head = ['job', 'file IOPS', 'tgtd IOPS', 'trireme IOPS', 'trireme/tgtd', 'trireme/file', 'trireme p99 us', 'tgtd CPU us/op', 'trireme CPU us/op'];
    process.stdout.write(`${renderTable(head, rows)}\n`);
    process.stdout.write(`${DEPTH_NOTE}; ${runtimeSec} s + ${rampSec} s ramp per run, median of ${repeat}\n`);
    process.stdout.write('CPU us/op: user + system time of the serving processes (tgtd; controller + 3 replicas) per I/O after the ramp\n');
    let idle: { controller: number; replicas: number[] } | undefined;
    if (o.idle) {
      idle = await idleRows(dir, parseSize(o.idleSize), 1);
      printIdle(idle, 1);
    }
    if (o.json) writeFileSync(o.json, `${JSON.stringify({ size, runtimeSec, rampSec, repeat, rows: json, idle }, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (require.main === module) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`volume-vs-tgtd: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
