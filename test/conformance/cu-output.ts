import { execFileSync } from 'node:child_process';

/**
 * How one iscsi-test-cu test ended.
 * - pass: CUnit counted it passed and nothing in it skipped itself;
 * - skip: CUnit counted it passed but (part of) it skipped itself, e.g.
 *   "UNMAP is not implemented" or "Logical unit is fully provisioned";
 * - fail: CUnit counted an assertion failure;
 * - error: the run gave no CUnit summary (crashed, hung past its timeout,
 *   could not log in);
 * - not-run: the time budget ran out before its turn.
 */
export type CuStatus = 'pass' | 'skip' | 'fail' | 'error' | 'not-run';

export interface CuResult {
  readonly test: string;
  readonly status: CuStatus;
  /** [FAILED]/[SKIPPED] messages and failed assertions, in output order. */
  readonly reasons: readonly string[];
  readonly ms: number;
}

/** Every test of one family (ALL, SCSI, iSCSI, LINUX), as iscsi-test-cu --list names them. */
export function listTests(family = 'ALL'): string[] {
  const out = execFileSync('iscsi-test-cu', ['--list'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith(`${family}.`) && l.split('.').length === 3);
}

/**
 * CUnit's "tests" summary row: Total Ran Passed Failed Inactive. It is the
 * reliable verdict; the per-test "...passed"/"...FAILED" words interleave with
 * libiscsi's own messages, which are printed unbuffered on another stream.
 */
const SUMMARY = /^\s*tests\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*$/m;
const MESSAGE = /\[(FAILED|SKIPPED)\]\s*(.*?)\s*$/gm;
/** A failed assertion as CUnit lists it: "1. test_x.c:38  - CU_ASSERT_EQUAL(_r,0)". */
const ASSERTION = /^\s*\d+\.\s+(\S+\.c:\d+)\s+-\s+(.*?)\s*$/gm;

/** Classifies the output of one `iscsi-test-cu -t FAMILY.SUITE.TEST` run. */
export function parseSingleTest(test: string, output: string, ms: number): CuResult {
  const reasons: string[] = [];
  let skipped = false;
  for (const m of output.matchAll(MESSAGE)) {
    if (m[1] === 'SKIPPED') skipped = true;
    reasons.push(`[${m[1]}] ${m[2]}`);
  }
  for (const m of output.matchAll(ASSERTION)) reasons.push(`${m[1]} ${m[2]}`);
  const summary = SUMMARY.exec(output);
  if (!summary) return { test, status: 'error', reasons: [...reasons, lastLines(output)], ms };
  const [ran, passed, failed] = [Number(summary[2]), Number(summary[3]), Number(summary[4])];
  if (ran === 0) return { test, status: 'error', reasons: [...reasons, 'test did not run (unknown name?)'], ms };
  if (failed > 0) return { test, status: 'fail', reasons, ms };
  if (passed === ran) return { test, status: skipped ? 'skip' : 'pass', reasons, ms };
  return { test, status: 'error', reasons: [...reasons, `summary ran=${ran} passed=${passed} failed=${failed}`], ms };
}

function lastLines(output: string): string {
  const lines = output.trim().split('\n').slice(-5).join(' | ');
  return lines ? `no CUnit summary; output ends: ${lines}` : 'no CUnit summary and no output';
}

export type CuCounts = Record<CuStatus, number>;

export function countResults(results: readonly CuResult[]): CuCounts {
  const counts: CuCounts = { pass: 0, skip: 0, fail: 0, error: 0, 'not-run': 0 };
  for (const r of results) counts[r.status]++;
  return counts;
}
