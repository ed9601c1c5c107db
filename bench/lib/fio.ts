import { execFile } from 'node:child_process';

/** One fio job against an iSCSI LUN through fio's libiscsi engine. */
export interface FioJob {
  /** Short name used in tables, e.g. `randread-4k-qd32`. */
  readonly name: string;
  readonly rw: 'read' | 'write' | 'randread' | 'randwrite';
  /** Block size in bytes. */
  readonly bs: number;
  readonly iodepth: number;
}

export interface FioRunOptions {
  /** iscsi://host:port/iqn/lun */
  readonly url: string;
  readonly runtimeSec: number;
  readonly rampSec: number;
  /** Limit the I/O range (bytes); default: the whole LU. */
  readonly size?: number;
  /** Kill fio when it overruns runtime+ramp by this much (default 60 s). */
  readonly graceMs?: number;
}

export interface FioResult {
  readonly job: string;
  readonly iops: number;
  /** Bytes per second. */
  readonly bandwidth: number;
  /** Completion latency percentiles, microseconds. */
  readonly p50Us: number;
  readonly p99Us: number;
  readonly ios: number;
  readonly errors: number;
}

/**
 * fio splits --filename on ':' (its list separator), so every colon of the URL
 * is escaped with a backslash, as fio's libiscsi engine documentation shows.
 */
export function fioIscsiFilename(url: string): string {
  return url.replace(/:/g, '\\:');
}

/**
 * How a job's queue depth is produced. fio 3.33 flags its libiscsi engine as
 * synchronous and silently caps --iodepth at 1 ("queue depth will be capped at
 * 1"), so depth N is made of N fio jobs (threads) at depth 1 each, reported as
 * one group. Each job opens its own iSCSI session, so the target sees N
 * commands in flight, as a multi-session initiator would produce. Every side of
 * a comparison (tgtd, Trireme, raw file) gets the same arguments.
 */
export function depthArgs(iodepth: number): string[] {
  const jobs = Math.max(1, Math.floor(iodepth));
  return ['--iodepth=1', `--numjobs=${jobs}`, '--thread', '--group_reporting'];
}

/** One line for bench output saying how depth is produced. */
export const DEPTH_NOTE = 'depth N = N fio threads x iodepth 1 (one iSCSI session each, group_reporting): fio 3.33 caps libiscsi at iodepth 1';

/** The fio command line for one job (time-based with ramp, JSON out). */
export function fioArgs(job: FioJob, options: FioRunOptions): string[] {
  const args = [
    `--name=${job.name}`,
    '--ioengine=libiscsi',
    `--filename=${fioIscsiFilename(options.url)}`,
    `--rw=${job.rw}`,
    `--bs=${job.bs}`,
    ...depthArgs(job.iodepth),
    '--time_based',
    `--runtime=${options.runtimeSec}`,
    `--ramp_time=${options.rampSec}`,
    '--percentile_list=50:99',
    '--output-format=json',
  ];
  if (options.size !== undefined) args.push(`--size=${options.size}`);
  return args;
}

interface FioDirection {
  iops: number;
  bw_bytes: number;
  total_ios: number;
  clat_ns?: { percentile?: Record<string, number> };
}

interface FioJson {
  jobs: Array<{ jobname: string; error: number; read: FioDirection; write: FioDirection }>;
}

/**
 * Reads fio's JSON report. fio may print notes before the JSON document on the
 * same stream (e.g. about the engine's queue depth), so parsing starts at the
 * first line that opens an object.
 */
export function parseFioJson(job: FioJob, stdout: string): FioResult {
  const start = stdout.search(/^\{/m);
  if (start < 0) throw new Error(`fio ${job.name}: no JSON in output: ${stdout.slice(0, 500)}`);
  const report = JSON.parse(stdout.slice(start)) as FioJson;
  const entry = report.jobs.find((j) => j.jobname === job.name) ?? report.jobs[0];
  if (!entry) throw new Error(`fio ${job.name}: report has no jobs`);
  const dir = job.rw === 'read' || job.rw === 'randread' ? entry.read : entry.write;
  const pct = dir.clat_ns?.percentile ?? {};
  const at = (p: string): number => (pct[p] ?? Number.NaN) / 1000;
  return {
    job: job.name,
    iops: dir.iops,
    bandwidth: dir.bw_bytes,
    p50Us: at('50.000000'),
    p99Us: at('99.000000'),
    ios: dir.total_ios,
    errors: entry.error,
  };
}

/** Runs one fio job and returns its parsed result; a non-zero exit or an I/O error rejects. */
export function runFio(job: FioJob, options: FioRunOptions): Promise<FioResult> {
  const timeout = (options.runtimeSec + options.rampSec) * 1000 + (options.graceMs ?? 60_000);
  return new Promise((resolve, reject) => {
    execFile('fio', fioArgs(job, options), { timeout, killSignal: 'SIGKILL', maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`fio ${job.name} failed: ${err.message}\n${stderr.slice(-2000)}`, { cause: err }));
        return;
      }
      try {
        const result = parseFioJson(job, stdout);
        if (result.errors !== 0 || result.ios === 0) throw new Error(`fio ${job.name}: error ${result.errors} after ${result.ios} I/Os\n${stderr.slice(-2000)}`);
        resolve(result);
      } catch (parseErr) {
        reject(parseErr);
      }
    });
  });
}

/** Whether the fio on PATH has the libiscsi engine (scripts/install-fio.sh builds one). */
export function fioHasLibiscsi(): Promise<boolean> {
  return new Promise((resolve) => {
    execFile('fio', ['--enghelp'], { encoding: 'utf8' }, (err, stdout) => resolve(!err && /^\s*libiscsi\s*$/m.test(stdout)));
  });
}
