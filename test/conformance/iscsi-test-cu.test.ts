import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { test } from 'node:test';
import { requireTools } from '../support/host-tools';
import { startTgtd, TGTD_TOOLS } from '../support/tgtd';
import { startTriremeTarget, type TriremeTarget } from '../support/trireme-target';
import { countResults, listTests, type CuResult } from './cu-output';
import { writeReport, type Crash } from './cu-report';
import { runTests } from './cu-runner';

// libiscsi's iscsi-test-cu (its ALL family: SBC/SPC commands, persistent
// reservations, and the iSCSI CmdSN/DataSN/residual/TMF checks) against tgtd and
// against `trireme target`, each over a sparse file of the same size on this
// machine. Measured here: 230 tests, 20-35 s for tgtd and 55-75 s for trireme
// with one process per test, depending on other load.
const LU_BYTES = 128 * 1024 * 1024;
const REPORT = process.env.TRIREME_CONFORMANCE_OUT ?? resolve(__dirname, '..', '..', 'conformance', 'iscsi-test-cu.json');
// Set to `tgtd` to exercise the harness with tgtd on both sides.
const SUBJECT = process.env.TRIREME_CONFORMANCE_SUBJECT ?? 'trireme';
// Logical block size of the trireme LU (512 by default, like tgtd's), to run the
// suite against a 4096-byte-block LU by hand.
const BLOCK_SIZE = process.env.TRIREME_CONFORMANCE_BLOCK_SIZE;
// A regular expression over test names, to investigate a few tests by hand.
const FILTER = process.env.TRIREME_CONFORMANCE_FILTER ? new RegExp(process.env.TRIREME_CONFORMANCE_FILTER) : undefined;

function sparseFile(dir: string, name: string): string {
  const path = join(dir, name);
  writeFileSync(path, '');
  truncateSync(path, LU_BYTES);
  return path;
}

async function runAgainstTgtd(tests: string[], dir: string, name: string): Promise<CuResult[]> {
  const tgtd = await startTgtd({ backingFile: sparseFile(dir, `${name}.img`) });
  try {
    return await runTests(tests, { url: async () => tgtd.url() });
  } finally {
    await tgtd.stop();
  }
}

/** Runs the tests against `trireme target`, restarting it (and recording a crash) whenever it dies. */
async function runAgainstTrireme(tests: string[], dir: string, crashes: Crash[]): Promise<CuResult[]> {
  const file = sparseFile(dir, 'trireme.img');
  const extraArgs = BLOCK_SIZE ? ['--block-size', BLOCK_SIZE] : [];
  const start = (): Promise<TriremeTarget> => startTriremeTarget({ device: `file:${file}`, size: String(LU_BYTES), extraArgs });
  let target = await start();
  try {
    return await runTests(tests, {
      url: async () => target.url(),
      afterTest: async (result) => {
        if (!target.crashed()) return;
        const exit = target.exit();
        crashes.push({ test: result.test, exit: `code ${exit?.code} signal ${exit?.signal}`, output: target.output().slice(-4000) });
        target = await start();
      },
    });
  } finally {
    await target.stop();
  }
}

test('iscsi-test-cu: trireme target passes at least as many tests as tgtd and never crashes', { timeout: 20 * 60_000 }, async (t) => {
  const tools = { ...TGTD_TOOLS, 'iscsi-test-cu': 'libiscsi-bin' };
  if (!requireTools(t, tools)) return;
  const dir = mkdtempSync(join(tmpdir(), 'trireme-conformance-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const tests = listTests('ALL').filter((name) => !FILTER || FILTER.test(name));
  assert.ok(tests.length > 0, 'iscsi-test-cu --list gave no ALL.* tests');

  // The two targets serve separate files and share nothing, so both lists run
  // at once: each iscsi-test-cu process mostly waits on its target.
  const crashes: Crash[] = [];
  const [reference, subject] = await Promise.all([
    runAgainstTgtd(tests, dir, 'tgtd'),
    SUBJECT === 'tgtd' ? runAgainstTgtd(tests, dir, 'tgtd-2') : runAgainstTrireme(tests, dir, crashes),
  ]);

  const summary = writeReport(REPORT, { name: 'tgtd', results: reference }, { name: SUBJECT === 'tgtd' ? 'tgtd-2' : 'trireme', results: subject }, crashes);
  for (const line of summary.split('\n')) t.diagnostic(line);
  t.diagnostic(`per-test results: ${REPORT}`);

  const ref = countResults(reference);
  const sub = countResults(subject);
  // tgtd itself must get through the list: otherwise the comparison says nothing.
  assert.equal(ref.error + ref['not-run'], 0, `tgtd run incomplete: ${JSON.stringify(ref)}`);
  assert.deepEqual(crashes, [], 'trireme target crashed');
  assert.ok(sub.pass >= ref.pass, `trireme passed ${sub.pass} tests, tgtd ${ref.pass}`);
});
