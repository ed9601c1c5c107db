import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSingleTest, type CuResult } from './cu-output';

export interface RunOptions {
  /** Kill a single test after this long (default 30 s). */
  readonly perTestTimeoutMs?: number;
  /** Stop starting tests after this long; the rest are `not-run` (default 8 min). */
  readonly budgetMs?: number;
  /**
   * The URL to test, asked before every test: the caller may restart a
   * crashed target (on a new port) in between and must know about it.
   */
  readonly url: () => Promise<string>;
  /** Called after each test, e.g. to notice that the target died during it. */
  readonly afterTest?: (result: CuResult) => Promise<void>;
}

/**
 * Runs one iscsi-test-cu test in its own process. One process per test gives
 * each test its own timeout and a verdict that a crash or hang of the target in
 * another test cannot blur; the cost, one login per test, is ~50 ms here.
 * --dataloss allows the write tests and --allow-sanitize the SANITIZE ones
 * (the LU is a scratch file; both targets answer in milliseconds). The
 * multipath tests get the same URL twice: two sessions, two I_T nexuses to
 * one LU, which is what they need to run rather than skip.
 */
function runOne(test: string, url: string, timeoutMs: number, cwd: string): Promise<CuResult> {
  const started = Date.now();
  return new Promise((resolve) => {
    execFile(
      'iscsi-test-cu',
      ['--dataloss', '--allow-sanitize', '--test', test, url, ...(test.startsWith('ALL.MultipathIO.') ? [url] : [])],
      { cwd, timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 8 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const ms = Date.now() - started;
        const result = parseSingleTest(test, `${stdout}\n${stderr}`, ms);
        const killed = err && (err as { killed?: boolean }).killed;
        if (killed) resolve({ test, status: 'error', reasons: [...result.reasons, `timed out after ${timeoutMs} ms`], ms });
        else resolve(result);
      },
    );
  });
}

/** Runs the given tests one after another against one target. */
export async function runTests(tests: readonly string[], options: RunOptions): Promise<CuResult[]> {
  const timeoutMs = options.perTestTimeoutMs ?? 30_000;
  const deadline = Date.now() + (options.budgetMs ?? 8 * 60_000);
  // CUnit writes nothing here in normal mode, but libiscsi tests may; keep the caller's cwd clean.
  const cwd = mkdtempSync(join(tmpdir(), 'trireme-cu-'));
  const results: CuResult[] = [];
  try {
    for (const test of tests) {
      if (Date.now() >= deadline) {
        results.push({ test, status: 'not-run', reasons: ['time budget exhausted'], ms: 0 });
        continue;
      }
      const result = await runOne(test, await options.url(), timeoutMs, cwd);
      results.push(result);
      await options.afterTest?.(result);
    }
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
  return results;
}
