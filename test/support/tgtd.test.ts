import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { requireTools } from './host-tools';
import { startTgtd, TGTD_TOOLS } from './tgtd';

const execFileAsync = promisify(execFile);

function lunFile(t: { after(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-tgtd-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'lun.img');
  writeFileSync(file, '');
  truncateSync(file, 16 * 1024 * 1024);
  return file;
}

async function readCapacity(url: string): Promise<string> {
  const { stdout } = await execFileAsync('iscsi-readcapacity16', [url], { timeout: 15_000 });
  return stdout;
}

test('tgtd helper serves the file on LUN 1 and shuts the daemon down', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, { ...TGTD_TOOLS, 'iscsi-readcapacity16': 'libiscsi-bin' })) return;
  const tgtd = await startTgtd({ backingFile: lunFile(t) });
  t.after(() => tgtd.stop());
  assert.match(await readCapacity(tgtd.url()), /Total size:\s*16777216/);
  await tgtd.stop();
  assert.ok(tgtd.process.exitCode !== null || tgtd.process.signalCode !== null, 'tgtd still running after stop()');
  await assert.rejects(readCapacity(tgtd.url()));
});

test('tgtd helper with CHAP admits the account and refuses a login without it', { timeout: 60_000 }, async (t) => {
  if (!requireTools(t, { ...TGTD_TOOLS, 'iscsi-readcapacity16': 'libiscsi-bin' })) return;
  const chap = { user: 'trireme-test', password: 'secret-1234567' };
  const tgtd = await startTgtd({ backingFile: lunFile(t), chap });
  t.after(() => tgtd.stop());
  assert.match(await readCapacity(tgtd.url(chap)), /Total size:\s*16777216/);
  await assert.rejects(readCapacity(tgtd.url()));
  await assert.rejects(readCapacity(tgtd.url({ user: chap.user, password: 'wrong-password' })));
});
