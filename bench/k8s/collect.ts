import { readFileSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';

/**
 * Turns the fio JSON of several runs (one per StorageClass, from the Jobs of
 * fio-jobs.yaml, or any fio --output-format=json) into one comparison table
 * (markdown) and an SVG bar chart, one panel per fio job.
 *
 *   node dist/bench/k8s/collect.js trireme=trireme.json jiva=jiva.json hostpath.json \
 *     --markdown results.md --svg results.svg
 */

export interface JobResult {
  readonly job: string;
  /** Which direction carried the I/O: randread → read, write → write. */
  readonly direction: 'read' | 'write';
  readonly iops: number;
  readonly bytesPerSecond: number;
  /** Completion latency percentiles in microseconds; NaN when fio did not report them. */
  readonly p50us: number;
  readonly p99us: number;
}

export interface Run {
  readonly label: string;
  readonly jobs: JobResult[];
}

interface FioDirection {
  io_bytes?: number;
  iops?: number;
  bw_bytes?: number;
  clat_ns?: { percentile?: Record<string, number> };
}

export class FioJsonError extends Error {
  readonly code = 'ERR_FIO_JSON';
}

function percentile(dir: FioDirection, p: string): number {
  const table = dir.clat_ns?.percentile ?? {};
  const key = Object.keys(table).find((k) => Number(k) === Number(p));
  return key === undefined ? Number.NaN : table[key] / 1000;
}

/** Parses fio's JSON output; text before the first `{` (a kubectl or fio notice) is skipped. */
export function parseFioOutput(label: string, text: string): Run {
  const start = text.indexOf('{');
  if (start < 0) throw new FioJsonError(`${label}: no JSON object in the fio output`);
  let parsed: { jobs?: Array<{ jobname: string; read?: FioDirection; write?: FioDirection; error?: number }> };
  try {
    parsed = JSON.parse(text.slice(start)) as typeof parsed;
  } catch (err) {
    throw new FioJsonError(`${label}: fio output is not JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed.jobs) || parsed.jobs.length === 0) throw new FioJsonError(`${label}: fio output has no jobs`);
  const jobs = parsed.jobs.map((j) => {
    if (j.error) throw new FioJsonError(`${label}: job ${j.jobname} failed with error ${j.error}`);
    const direction = (j.write?.io_bytes ?? 0) > (j.read?.io_bytes ?? 0) ? 'write' : 'read';
    const dir = j[direction] ?? {};
    return { job: j.jobname, direction, iops: dir.iops ?? 0, bytesPerSecond: dir.bw_bytes ?? 0, p50us: percentile(dir, '50'), p99us: percentile(dir, '99') } as JobResult;
  });
  return { label, jobs };
}

const fmt = (n: number, digits = 0): string => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–');

/** Job order of the first run, then any job only later runs have. */
function jobNames(runs: readonly Run[]): string[] {
  const names: string[] = [];
  for (const r of runs) for (const j of r.jobs) if (!names.includes(j.job)) names.push(j.job);
  return names;
}

export function markdownTable(runs: readonly Run[]): string {
  const head = ['job', 'metric', ...runs.map((r) => r.label)];
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map((_, i) => (i < 2 ? '---' : '---:')).join(' | ')} |`];
  for (const name of jobNames(runs)) {
    const cells = (f: (j: JobResult) => string): string[] => runs.map((r) => {
      const j = r.jobs.find((x) => x.job === name);
      return j ? f(j) : '–';
    });
    lines.push(`| ${name} | IOPS | ${cells((j) => fmt(j.iops)).join(' | ')} |`);
    lines.push(`| ${name} | MiB/s | ${cells((j) => fmt(j.bytesPerSecond / 1048576, 1)).join(' | ')} |`);
    lines.push(`| ${name} | p99 latency (µs) | ${cells((j) => fmt(j.p99us)).join(' | ')} |`);
  }
  return `${lines.join('\n')}\n`;
}

const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#d62728', '#9467bd', '#8c564b'];
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * One panel per job: IOPS for small blocks, MiB/s for 1 MiB ones (what each
 * workload is judged by), one bar per run, each panel on its own scale.
 */
export function svgChart(runs: readonly Run[]): string {
  const names = jobNames(runs);
  const cols = 3;
  const pw = 300;
  const ph = 220;
  const rows = Math.ceil(names.length / cols);
  const legend = 30;
  const width = cols * pw;
  const height = rows * ph + legend;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`, `<rect width="100%" height="100%" fill="white"/>`];
  runs.forEach((r, i) => {
    parts.push(`<rect x="${10 + i * 150}" y="8" width="12" height="12" fill="${COLORS[i % COLORS.length]}"/><text x="${26 + i * 150}" y="18">${esc(r.label)}</text>`);
  });
  names.forEach((name, n) => {
    const x0 = (n % cols) * pw;
    const y0 = legend + Math.floor(n / cols) * ph;
    const sequential = runs.some((r) => r.jobs.some((j) => j.job === name && j.bytesPerSecond / Math.max(1, j.iops) >= 65536));
    const value = (j: JobResult): number => (sequential ? j.bytesPerSecond / 1048576 : j.iops);
    const values = runs.map((r) => {
      const j = r.jobs.find((x) => x.job === name);
      return j ? value(j) : 0;
    });
    const max = Math.max(1, ...values);
    const plotH = ph - 60;
    const barW = Math.min(60, (pw - 40) / Math.max(1, runs.length) - 10);
    parts.push(`<text x="${x0 + pw / 2}" y="${y0 + 16}" text-anchor="middle" font-weight="bold">${esc(name)} (${sequential ? 'MiB/s' : 'IOPS'})</text>`);
    parts.push(`<line x1="${x0 + 20}" y1="${y0 + 30 + plotH}" x2="${x0 + pw - 20}" y2="${y0 + 30 + plotH}" stroke="#333"/>`);
    values.forEach((v, i) => {
      const h = (v / max) * plotH;
      const x = x0 + 30 + i * (barW + 10);
      const y = y0 + 30 + plotH - h;
      parts.push(`<rect x="${x.toFixed(1)}" y="${y.toFixed(1)}" width="${barW.toFixed(1)}" height="${h.toFixed(1)}" fill="${COLORS[i % COLORS.length]}"><title>${esc(runs[i].label)}: ${fmt(v, sequential ? 1 : 0)}</title></rect>`);
      parts.push(`<text x="${(x + barW / 2).toFixed(1)}" y="${(y - 3).toFixed(1)}" text-anchor="middle">${fmt(v, sequential ? 1 : 0)}</text>`);
    });
  });
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}

export function parseArgs(argv: readonly string[]): { inputs: Array<{ label: string; file: string }>; markdown?: string; svg?: string } {
  const inputs: Array<{ label: string; file: string }> = [];
  let markdown: string | undefined;
  let svg: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--markdown' || a === '--svg') {
      const value = argv[++i];
      if (!value) throw new FioJsonError(`${a} needs a file name`);
      if (a === '--markdown') markdown = value;
      else svg = value;
    } else {
      const eq = a.indexOf('=');
      inputs.push(eq > 0 ? { label: a.slice(0, eq), file: a.slice(eq + 1) } : { label: basename(a).replace(/\.json$/, ''), file: a });
    }
  }
  if (inputs.length === 0) throw new FioJsonError('usage: collect [LABEL=]FIO.json ... [--markdown FILE] [--svg FILE]');
  return { inputs, markdown, svg };
}

export function main(argv: readonly string[]): void {
  const args = parseArgs(argv);
  const runs = args.inputs.map((i) => parseFioOutput(i.label, readFileSync(i.file, 'utf8')));
  const table = markdownTable(runs);
  if (args.markdown) writeFileSync(args.markdown, table);
  else process.stdout.write(table);
  if (args.svg) writeFileSync(args.svg, svgChart(runs));
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
