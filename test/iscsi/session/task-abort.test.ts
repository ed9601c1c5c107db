import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskAbort } from '../../../src/iscsi/session/task-abort';

test('a task abort calls each listener once and forgets them', () => {
  const abort = new TaskAbort();
  const calls: string[] = [];
  const a = (): void => void calls.push('a');
  const b = (): void => void calls.push('b');
  abort.signal.addEventListener('abort', a);
  abort.signal.addEventListener('abort', b);
  abort.signal.removeEventListener('abort', a);
  assert.equal(abort.signal.aborted, false);
  abort.abort();
  abort.abort();
  assert.equal(abort.signal.aborted, true);
  assert.deepEqual(calls, ['b']);
});

test('like AbortSignal, a listener added after the abort is never called', () => {
  const abort = new TaskAbort();
  abort.abort();
  let called = false;
  abort.signal.addEventListener('abort', () => {
    called = true;
  });
  abort.signal.removeEventListener('abort', () => undefined);
  assert.equal(called, false);
});
