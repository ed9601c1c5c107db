import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { after, test } from 'node:test';
import { findOrphans, reapOrphans, STACK_ENV } from '../../../src/controller/orchestrator/orphans';

const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function sleeper(env: NodeJS.ProcessEnv): ChildProcess {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)'], { env: { ...process.env, ...env }, stdio: 'ignore' });
  children.push(child);
  return child;
}

test('children left by a killed manager are found by their stack mark and ended; others are left alone', { skip: process.platform !== 'linux' && 'needs /proc' }, async () => {
  const dir = `/tmp/trireme-orphans-${process.pid}`;
  const mine = [sleeper({ [STACK_ENV]: dir }), sleeper({ [STACK_ENV]: dir })];
  const otherStack = sleeper({ [STACK_ENV]: `${dir}-other` });
  const unmarked = sleeper({});
  await new Promise((r) => setTimeout(r, 200));
  assert.deepEqual((await findOrphans(dir)).sort(), mine.map((c) => c.pid).sort());
  const exited = mine.map((c) => new Promise((resolve) => c.once('exit', (_code, signal) => resolve(signal))));
  assert.deepEqual((await reapOrphans(dir)).sort(), mine.map((c) => c.pid).sort());
  assert.deepEqual(await Promise.all(exited), ['SIGKILL', 'SIGKILL']);
  assert.equal(otherStack.exitCode, null);
  assert.equal(otherStack.signalCode, null);
  assert.equal(unmarked.signalCode, null);
  assert.deepEqual(await findOrphans(dir), []);
});
