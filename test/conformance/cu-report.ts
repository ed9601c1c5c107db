import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { countResults, type CuCounts, type CuResult } from './cu-output';

export interface Side {
  readonly name: string;
  readonly results: readonly CuResult[];
}

export interface Crash {
  readonly test: string;
  readonly exit: string;
  readonly output: string;
}

function countsLine(name: string, c: CuCounts, ms: number): string {
  return `${name.padEnd(8)} pass ${c.pass}  skip ${c.skip}  fail ${c.fail}  error ${c.error}  not-run ${c['not-run']}  (${(ms / 1000).toFixed(1)} s)`;
}

function totalMs(results: readonly CuResult[]): number {
  return results.reduce((sum, r) => sum + r.ms, 0);
}

/** A short text summary: counts per side, then every test whose status differs or that did not pass on the subject. */
export function summarize(reference: Side, subject: Side, crashes: readonly Crash[]): string {
  const lines = [
    countsLine(reference.name, countResults(reference.results), totalMs(reference.results)),
    countsLine(subject.name, countResults(subject.results), totalMs(subject.results)),
    `${subject.name} crashes: ${crashes.length}${crashes.map((c) => `\n  during ${c.test}: ${c.exit}`).join('')}`,
  ];
  const byTest = new Map(reference.results.map((r) => [r.test, r]));
  const notable = subject.results.filter((r) => r.status === 'fail' || r.status === 'error' || r.status !== byTest.get(r.test)?.status);
  if (notable.length > 0) lines.push(`tests that differ or do not pass on ${subject.name} (${reference.name} -> ${subject.name}):`);
  for (const r of notable) {
    const ref = byTest.get(r.test);
    lines.push(`  ${r.test}: ${ref?.status ?? '?'} -> ${r.status}${r.reasons.length ? `: ${r.reasons.join('; ')}` : ''}`);
  }
  return lines.join('\n');
}

/** Writes the full per-test results (both sides) as JSON and the summary as text beside it. */
export function writeReport(path: string, reference: Side, subject: Side, crashes: readonly Crash[]): string {
  mkdirSync(dirname(path), { recursive: true });
  const subjectByTest = new Map(subject.results.map((r) => [r.test, r]));
  const tests = reference.results.map((r) => ({
    test: r.test,
    [reference.name]: { status: r.status, reasons: r.reasons, ms: r.ms },
    [subject.name]: subjectByTest.get(r.test) ?? null,
  }));
  const report = {
    generated: new Date().toISOString(),
    counts: { [reference.name]: countResults(reference.results), [subject.name]: countResults(subject.results) },
    crashes,
    tests,
  };
  writeFileSync(path, JSON.stringify(report, null, 2) + '\n');
  const summary = summarize(reference, subject, crashes);
  writeFileSync(path.replace(/\.json$/, '') + '.txt', summary + '\n');
  return summary;
}
