import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { silentLogger } from '../../../src/common/logger';
import { SupervisedChild } from '../../../src/controller/orchestrator/supervisor';

const dir = mkdtempSync(join(tmpdir(), 'trireme-supervisor-'));
const children: SupervisedChild[] = [];
after(async () => {
  await Promise.all(children.map((c) => c.stop(1000)));
  rmSync(dir, { recursive: true, force: true });
});

async function until(what: string, predicate: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function supervise(name: string, script: string, backoff = { initialMs: 50, maxMs: 400, stableMs: 60_000 }): SupervisedChild {
  const child = new SupervisedChild(name, () => ({ command: process.execPath, args: ['-e', script], logFile: join(dir, `${name}.log`) }), silentLogger(), backoff);
  children.push(child);
  return child;
}

test('a child killed with SIGKILL is restarted as a new process', async () => {
  const child = supervise('sleeper', "console.log('up ' + process.pid); setInterval(() => {}, 1000)");
  child.start();
  const upLines = (): number => readFileSync(join(dir, 'sleeper.log'), 'utf8').split('\n').filter((l) => l.startsWith('up ')).length;
  await until('first start', () => child.status().state === 'running' && upLines() === 1);
  const first = child.status().pid;
  assert.ok(first > 0);
  process.kill(first, 'SIGKILL');
  await until('restart', () => child.status().state === 'running' && child.status().pid !== first);
  assert.equal(child.status().restarts, 1);
  assert.equal(child.status().lastExit, 'signal SIGKILL');
  assert.equal(alive(first), false);
  await until('log lines of both runs', () => upLines() === 2);
});

test('a crash loop is restarted with a doubling, bounded delay', async () => {
  const child = supervise('crasher', 'process.exit(3)', { initialMs: 40, maxMs: 160, stableMs: 60_000 });
  const started = Date.now();
  child.start();
  await until('five restarts', () => child.status().restarts >= 5);
  const elapsed = Date.now() - started;
  // Delays 40 + 80 + 160 + 160 + 160 = 600 ms at least; no tight loop.
  assert.ok(elapsed >= 550, `five restarts took only ${elapsed} ms`);
  assert.equal(child.status().lastExit, 'exit code 3');
  await child.stop(500);
  const restarts = child.status().restarts;
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(child.status().restarts, restarts, 'a stopped child is not restarted');
  assert.equal(child.status().state, 'stopped');
});

test('stop ends a child that ignores SIGTERM and one that is SIGSTOPped', async () => {
  const stubborn = supervise('stubborn', "process.on('SIGTERM', () => {}); console.log('armed'); setInterval(() => {}, 1000)");
  stubborn.start();
  // Wait until the child has its SIGTERM handler: on a loaded machine node can take
  // longer than any fixed pause to get there, and an unarmed child dies at once.
  const log = join(dir, 'stubborn.log');
  await until('stubborn armed', () => stubborn.status().state === 'running' && existsSync(log) && readFileSync(log, 'utf8').includes('armed'));
  const pid = stubborn.status().pid;
  const t0 = Date.now();
  await stubborn.stop(300);
  assert.ok(Date.now() - t0 >= 250, 'SIGKILL came only after the grace period');
  assert.equal(alive(pid), false);

  const frozen = supervise('frozen', 'setInterval(() => {}, 1000)');
  frozen.start();
  await until('frozen start', () => frozen.status().state === 'running');
  const frozenPid = frozen.status().pid;
  assert.ok(frozen.signal('SIGSTOP'));
  await frozen.stop(2000);
  assert.equal(alive(frozenPid), false);
  assert.equal(frozen.status().restarts, 0);
});

test('a command that cannot be spawned is retried, not fatal', async () => {
  const missing = new SupervisedChild('missing', () => ({ command: join(dir, 'no-such-binary'), args: [], logFile: join(dir, 'missing.log') }), silentLogger(), {
    initialMs: 30,
    maxMs: 60,
    stableMs: 60_000,
  });
  children.push(missing);
  missing.start();
  await until('retries', () => missing.status().restarts >= 2);
  await missing.stop();
  assert.equal(missing.status().state, 'stopped');
});
