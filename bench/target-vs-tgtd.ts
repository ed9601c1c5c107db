import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { Command } from 'commander';
import { parseSize } from '../src/common/size';
import { startTgtd } from '../test/support/tgtd';
import { startTriremeTarget } from '../test/support/trireme-target';
import { DEPTH_NOTE, fioHasLibiscsi, runFio, type FioJob, type FioResult } from './lib/fio';
import { median, ratio } from './lib/stats';
import { renderTable, type Cell } from './lib/table';

// `trireme target` against tgtd, serving the same preconditioned file, driven
// by the same fio jobs through fio's libiscsi engine (one initiator process, no
// kernel in the path). Both serve the file at once and each job runs on them
// back to back, so slow drift on the machine (page cache, other load) hits both
// alike.

const execFileAsync = promisify(execFile);
const KIB = 1024;
const MIB = 1024 * 1024;

export const MATRIX: readonly FioJob[] = [
  { name: 'randread-4k-qd32', rw: 'randread', bs: 4 * KIB, iodepth: 32 },
  { name: 'randwrite-4k-qd32', rw: 'randwrite', bs: 4 * KIB, iodepth: 32 },
  { name: 'randread-4k-qd1', rw: 'randread', bs: 4 * KIB, iodepth: 1 },
  { name: 'randwrite-4k-qd1', rw: 'randwrite', bs: 4 * KIB, iodepth: 1 },
  { name: 'read-1m-qd8', rw: 'read', bs: MIB, iodepth: 8 },
  { name: 'write-1m-qd8', rw: 'write', bs: MIB, iodepth: 8 },
];

interface Options {
  size: string;
  file: string;
  runtime: string;
  ramp: string;
  repeat: string;
  jobs?: string;
  subject: string;
  json?: string;
}

interface Target {
  url(): string;
  stop(): Promise<void>;
  crashed(): boolean;
  /** The serving process, whose CPU time is measured around each run. */
  pid(): number | undefined;
}

/** A fio result with the CPU the target process spent per I/O. */
interface Measured extends FioResult {
  /**
   * CPU time (user + system, all threads) of the target process over the whole
   * fio run, per I/O. fio counts I/Os after the ramp only, so the ramp's share
   * is estimated from the measured rate; login and logout are included.
   */
  readonly cpuUsPerIo: number;
}

/** Clock ticks per second of /proc/PID/stat times (sysconf(_SC_CLK_TCK)). */
let clockTicks: number | undefined;

async function ticksPerSecond(): Promise<number> {
  if (clockTicks === undefined) {
    const { stdout } = await execFileAsync('getconf', ['CLK_TCK']);
    clockTicks = Number(stdout.trim()) || 100;
  }
  return clockTicks;
}

/** utime + stime of a process in clock ticks (proc(5): fields 14 and 15, after the command name). */
function cpuTicks(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return Number.NaN;
  }
}

async function measure(job: FioJob, target: Target, runtimeSec: number, rampSec: number): Promise<Measured> {
  const before = cpuTicks(target.pid());
  const result = await runFio(job, { url: target.url(), runtimeSec, rampSec });
  const ticks = cpuTicks(target.pid()) - before;
  const ios = result.ios + result.iops * rampSec;
  return { ...result, cpuUsPerIo: ((ticks / (await ticksPerSecond())) * 1e6) / ios };
}

/**
 * Writes the whole file once (sequential 1 MiB writes of fio's random buffers,
 * fsync at the end) so that reads hit allocated, non-zero data on both targets.
 * Skipped when the file already has every block allocated.
 */
async function precondition(file: string, size: number): Promise<void> {
  mkdirSync(dirname(file), { recursive: true });
  if (existsSync(file)) {
    const st = statSync(file);
    if (st.size === size && st.blocks * 512 >= size) return;
  }
  writeFileSync(file, '');
  truncateSync(file, size);
  const started = Date.now();
  process.stderr.write(`bench: preconditioning ${file} (${size} bytes)\n`);
  await execFileAsync('fio', ['--name=precondition', `--filename=${file}`, '--rw=write', '--bs=1M', `--size=${size}`, '--ioengine=psync', '--end_fsync=1', '--output-format=terse'], {
    maxBuffer: 16 * MIB,
  });
  process.stderr.write(`bench: preconditioned in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
}

async function startTarget(kind: string, file: string, size: number): Promise<Target> {
  if (kind === 'tgtd') {
    const t = await startTgtd({ backingFile: file });
    return { url: () => t.url(), stop: () => t.stop(), crashed: () => t.process.exitCode !== null || t.process.signalCode !== null, pid: () => t.process.pid };
  }
  const t = await startTriremeTarget({ device: `file:${file}`, size: String(size) });
  return { url: () => t.url(), stop: () => t.stop(), crashed: () => t.crashed(), pid: () => t.process.pid };
}

interface Side {
  readonly label: string;
  readonly kind: string;
}

/**
 * Runs every job `repeat` times on both targets, the two runs of a pair back to
 * back (which goes first alternates). Both targets serve the file for the whole
 * run: on a shared machine the load drifts over minutes, and runs seconds apart
 * see nearly the same machine, so each pair gives a fair ratio. Returns, per
 * side label, results indexed [rep][job].
 */
async function runPaired(sides: readonly Side[], file: string, size: number, jobs: readonly FioJob[], repeat: number, runtimeSec: number, rampSec: number): Promise<Map<string, Measured[][]>> {
  const targets: Target[] = [];
  const byLabel = new Map<string, Measured[][]>(sides.map((s) => [s.label, Array.from({ length: repeat }, () => [])]));
  try {
    for (const side of sides) targets.push(await startTarget(side.kind, file, size));
    for (let rep = 0; rep < repeat; rep++) {
      for (const [j, job] of jobs.entries()) {
        const order = (rep + j) % 2 === 0 ? [0, 1] : [1, 0];
        for (const i of order) {
          const result = await measure(job, targets[i], runtimeSec, rampSec);
          if (targets[i].crashed()) throw new Error(`${sides[i].label} exited during ${job.name}`);
          process.stderr.write(`bench: ${sides[i].label} ${job.name}: ${Math.round(result.iops)} IOPS, p99 ${Math.round(result.p99Us)} us, ${result.cpuUsPerIo.toFixed(1)} CPU us/IO\n`);
          byLabel.get(sides[i].label)?.[rep].push(result);
        }
      }
    }
  } finally {
    await Promise.all(targets.map((t) => t.stop()));
  }
  return byLabel;
}

interface Summary {
  iops: number;
  bandwidth: number;
  p50Us: number;
  p99Us: number;
  cpuUsPerIo: number;
}

function summarize(runs: readonly Measured[]): Summary {
  return {
    iops: median(runs.map((r) => r.iops)),
    bandwidth: median(runs.map((r) => r.bandwidth)),
    p50Us: median(runs.map((r) => r.p50Us)),
    p99Us: median(runs.map((r) => r.p99Us)),
    cpuUsPerIo: median(runs.map((r) => r.cpuUsPerIo)),
  };
}

function report(jobs: readonly FioJob[], kinds: readonly string[], byKind: Map<string, Measured[][]>): { text: string; rows: unknown[] } {
  const head = ['job', 'target', 'IOPS', 'MB/s', 'p50 us', 'p99 us', 'CPU us/IO'];
  const rows: Cell[][] = [];
  const json: unknown[] = [];
  for (const [i, job] of jobs.entries()) {
    const [ref, sub] = kinds.map((k) => summarize((byKind.get(k) ?? []).map((rep) => rep[i])));
    rows.push([job.name, kinds[0], ref.iops, ref.bandwidth / 1e6, ref.p50Us, ref.p99Us, ref.cpuUsPerIo]);
    rows.push(['', kinds[1], sub.iops, sub.bandwidth / 1e6, sub.p50Us, sub.p99Us, sub.cpuUsPerIo]);
    // The ratio row is the median of the per-pair ratios (runs seconds apart),
    // steadier on a busy machine than the ratio of the two medians. Latency
    // and CPU ratios read the other way round from throughput: below 1 is better.
    const pairs = (byKind.get(kinds[0]) ?? []).map((rep, r) => [rep[i], (byKind.get(kinds[1]) ?? [])[r][i]] as const);
    const paired = (pick: (x: Measured) => number): number => median(pairs.map(([a, b]) => ratio(pick(b), pick(a))));
    const ratios = { iops: paired((x) => x.iops), bandwidth: paired((x) => x.bandwidth), p50Us: paired((x) => x.p50Us), p99Us: paired((x) => x.p99Us), cpuUsPerIo: paired((x) => x.cpuUsPerIo) };
    rows.push(['', `${kinds[1]}/${kinds[0]}`, ratios.iops, ratios.bandwidth, ratios.p50Us, ratios.p99Us, ratios.cpuUsPerIo]);
    json.push({ job, [kinds[0]]: ref, [kinds[1]]: sub, ratios });
  }
  return { text: renderTable(head, rows), rows: json };
}

async function main(argv: string[]): Promise<void> {
  const program = new Command('target-vs-tgtd')
    .description('Benchmark `trireme target` against tgtd with fio (libiscsi engine); medians of repeated runs')
    .option('--size <size>', 'size of the served file', '4G')
    .option('--file <path>', 'file both targets serve (created and preconditioned when needed)', join(tmpdir(), 'trireme-bench', 'target-vs-tgtd.img'))
    .option('--runtime <seconds>', 'measured seconds per fio run', '10')
    .option('--ramp <seconds>', 'unmeasured warm-up seconds per fio run', '2')
    .option('--repeat <n>', 'runs per job and target; the table shows medians', '3')
    .option('--jobs <names>', `comma-separated subset of: ${MATRIX.map((j) => j.name).join(', ')}`)
    .option('--subject <kind>', 'target compared with tgtd: trireme, or tgtd to check the bench itself', 'trireme')
    .option('--json <path>', 'also write the medians as JSON here')
    .parse(argv);
  const o = program.opts<Options>();
  const size = parseSize(o.size);
  const [runtimeSec, rampSec, repeat] = [Number(o.runtime), Number(o.ramp), Number(o.repeat)];
  if (![runtimeSec, rampSec, repeat].every((n) => Number.isInteger(n) && n >= 0) || repeat < 1 || runtimeSec < 1) {
    throw new Error('--runtime, --ramp and --repeat take whole numbers (runtime and repeat at least 1)');
  }
  const wanted = o.jobs?.split(',').map((s) => s.trim());
  const jobs = wanted ? MATRIX.filter((j) => wanted.includes(j.name)) : MATRIX;
  if (jobs.length === 0) throw new Error(`--jobs matched nothing; choose from ${MATRIX.map((j) => j.name).join(', ')}`);
  if (!(await fioHasLibiscsi())) throw new Error('fio lacks the libiscsi engine: run scripts/install-fio.sh as root');

  await precondition(o.file, size);
  if (o.subject !== 'trireme' && o.subject !== 'tgtd') throw new Error('--subject is trireme or tgtd');
  // Series labels; with tgtd on both sides the second series is "tgtd-b".
  const sides = [
    { label: 'tgtd', kind: 'tgtd' },
    { label: o.subject === 'tgtd' ? 'tgtd-b' : 'trireme', kind: o.subject },
  ];
  const started = Date.now();
  // Other work on the machine skews every number; the load average goes out with the table.
  const loadBefore = loadavg()[0];
  const byKind = await runPaired(sides, o.file, size, jobs, repeat, runtimeSec, rampSec);
  const { text, rows } = report(jobs, sides.map((s) => s.label), byKind);
  const load = `load average ${loadBefore.toFixed(1)} before, ${loadavg()[0].toFixed(1)} after, on ${cpus().length} CPUs`;
  process.stdout.write(`${text}\n${DEPTH_NOTE}\nsize ${o.size}, ${runtimeSec} s + ${rampSec} s ramp per run, median of ${repeat}; total ${((Date.now() - started) / 1000).toFixed(0)} s; ${load}\n`);
  if (o.json) writeFileSync(o.json, JSON.stringify({ size, runtimeSec, rampSec, repeat, load, rows }, null, 2) + '\n');
}

if (require.main === module) {
  main(process.argv).catch((err: unknown) => {
    process.stderr.write(`target-vs-tgtd: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
