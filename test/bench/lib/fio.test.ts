import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fioArgs, fioHasLibiscsi, fioIscsiFilename, runFio } from '../../../bench/lib/fio';
import { median, ratio } from '../../../bench/lib/stats';
import { formatNumber, renderTable } from '../../../bench/lib/table';
import { requireTools } from '../../support/host-tools';
import { startTgtd, TGTD_TOOLS } from '../../support/tgtd';

test('fio filenames escape every colon of the iSCSI URL', () => {
  assert.equal(fioIscsiFilename('iscsi://127.0.0.1:3260/iqn.2026-01.io.trireme:vol/0'), 'iscsi\\://127.0.0.1\\:3260/iqn.2026-01.io.trireme\\:vol/0');
  const args = fioArgs({ name: 'j', rw: 'randread', bs: 4096, iodepth: 32 }, { url: 'iscsi://h:1/iqn.x:y/0', runtimeSec: 5, rampSec: 1 });
  assert.ok(args.includes('--ioengine=libiscsi') && args.includes('--ramp_time=1'));
  // Depth 32 is 32 jobs at depth 1: fio caps its synchronous libiscsi engine at depth 1.
  assert.ok(args.includes('--numjobs=32') && args.includes('--iodepth=1') && args.includes('--group_reporting'));
});

test('median and ratio', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.throws(() => median([]));
  assert.equal(ratio(50, 100), 0.5);
  assert.ok(Number.isNaN(ratio(1, 0)));
});

test('tables right-align numbers and format them by magnitude', () => {
  assert.equal(formatNumber(12345.6), '12,346');
  assert.equal(formatNumber(12.34), '12.3');
  assert.equal(formatNumber(0.456), '0.46');
  assert.equal(formatNumber(Number.NaN), '-');
  const text = renderTable(['job', 'IOPS'], [['a', 1000]]);
  assert.match(text, /│ a\s+│\s+1,000 │/);
});

test('runFio drives a real tgtd LUN through the libiscsi engine and parses the JSON report', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, { ...TGTD_TOOLS, fio: 'fio (scripts/install-fio.sh)' })) return;
  if (!(await fioHasLibiscsi())) {
    const message = 'fio lacks the libiscsi engine (run scripts/install-fio.sh as root)';
    if (process.env.CI === 'true') throw new Error(message);
    t.skip(message);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'trireme-fio-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lun.img');
  writeFileSync(file, '');
  truncateSync(file, 64 * 1024 * 1024);
  const tgtd = await startTgtd({ backingFile: file });
  t.after(() => tgtd.stop());

  const write = await runFio({ name: 'w', rw: 'randwrite', bs: 4096, iodepth: 4 }, { url: tgtd.url(), runtimeSec: 1, rampSec: 0 });
  assert.equal(write.errors, 0);
  assert.ok(write.ios > 0 && write.iops > 0, `no I/O measured: ${JSON.stringify(write)}`);
  assert.equal(Math.round(write.bandwidth / write.iops), 4096);
  assert.ok(write.p50Us > 0 && write.p99Us >= write.p50Us, `percentiles: ${JSON.stringify(write)}`);

  // A LUN that does not exist must reject, not report zeros.
  await assert.rejects(runFio({ name: 'r', rw: 'read', bs: 4096, iodepth: 1 }, { url: tgtd.url({ lun: 7 }), runtimeSec: 1, rampSec: 0, graceMs: 20_000 }));
});
