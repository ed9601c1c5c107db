import assert from 'node:assert/strict';
import { test } from 'node:test';
import { countResults, parseSingleTest, type CuResult, type CuStatus } from './cu-output';

// Outputs as iscsi-test-cu 1.19 prints them (CUnit 2.1-3), trimmed of the banner.
const summary = (ran: number, passed: number, failed: number): string =>
  `Run Summary:    Type  Total    Ran Passed Failed Inactive\n              suites      1      1    n/a      0        0\n` +
  `               tests      1      ${ran}      ${passed}      ${failed}        0\n`;

test('a passed test whose message stream interleaves a [FAILED] line still counts by the CUnit summary', () => {
  const out = `Suite: Reserve6\n  Test: LUNReset ...passed    [FAILED] PRIN command: failed with sense.\n\n${summary(1, 1, 0)}`;
  const r = parseSingleTest('ALL.Reserve6.LUNReset', out, 5);
  assert.equal(r.status, 'pass');
  assert.deepEqual(r.reasons, ['[FAILED] PRIN command: failed with sense.']);
});

test('a test that skipped itself is a skip, with its reason', () => {
  const out = `Suite: Unmap\n  Test: Simple ...    [SKIPPED] UNMAP is not implemented.\npassed\n\n${summary(1, 1, 0)}`;
  assert.deepEqual(parseSingleTest('ALL.Unmap.Simple', out, 1), { test: 'ALL.Unmap.Simple', status: 'skip', reasons: ['[SKIPPED] UNMAP is not implemented.'], ms: 1 });
});

test('a failed test lists its failed assertions', () => {
  const out =
    `Suite: iSCSITMF\n  Test: LUNResetSimpleAsync ...FAILED\n    1. test_async_lu_reset_simple.c:157  - CU_ASSERT_EQUAL(reconnect_succeeded,1)\n\n` + summary(1, 0, 1);
  const r = parseSingleTest('ALL.iSCSITMF.LUNResetSimpleAsync', out, 1);
  assert.equal(r.status, 'fail');
  assert.deepEqual(r.reasons, ['test_async_lu_reset_simple.c:157 CU_ASSERT_EQUAL(reconnect_succeeded,1)']);
});

test('output without a summary (crash, failed login) is an error carrying the last lines', () => {
  const r = parseSingleTest('ALL.Read10.Simple', 'Failed to login to target. connection refused\n', 3);
  assert.equal(r.status, 'error');
  assert.match(r.reasons.join(' '), /connection refused/);
});

test('counts cover every status', () => {
  const statuses: CuStatus[] = ['pass', 'pass', 'skip', 'fail', 'error', 'not-run'];
  const results: CuResult[] = statuses.map((status, i) => ({ test: `T${i}`, status, reasons: [], ms: 0 }));
  assert.deepEqual(countResults(results), { pass: 2, skip: 1, fail: 1, error: 1, 'not-run': 1 });
});
