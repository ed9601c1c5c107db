import assert from 'node:assert/strict';
import { test } from 'node:test';
import { silentLogger } from '../../../src/common/logger';
import type { ReplicaLink } from '../../../src/controller/engine/replica-link';
import { ReplicaSlot } from '../../../src/controller/engine/replica-slot';
import { SimClock } from './sim/sim-clock';

// ReplicaSlot's timeouts run on one timer per slot: each call must still time
// out exactly `timeoutMs` after it was issued, never earlier, and only once.

/** A call the test settles by hand. */
function pending<T>(): { promise: Promise<T>; resolve: (value: T) => void; reject: (err: Error) => void } {
  let resolve!: (value: T) => void;
  let reject!: (err: Error) => void;
  const promise = new Promise<T>((res, rej) => ((resolve = res), (reject = rej)));
  return { promise, resolve, reject };
}

test('each call times out timeoutMs after it was issued, and a late answer only settles the count', async () => {
  const clock = new SimClock();
  // Only the id is read: no request reaches the link in this test.
  const slot = new ReplicaSlot({ id: 'r1' } as ReplicaLink, clock, 1500, silentLogger());
  const outcomes: Array<{ name: string; at: number; code?: string; value?: number }> = [];
  const record = (name: string) => (err: unknown, value?: number) => outcomes.push({ name, at: clock.now(), code: (err as { code?: string } | undefined)?.code, value });
  const a = pending<number>();
  const b = pending<number>();
  const c = pending<number>();
  slot.dispatch('a', () => a.promise, 1, record('a'));
  await clock.advance(200);
  slot.dispatch('c', () => c.promise, 2, record('c'));
  await clock.advance(800);
  slot.dispatch('b', () => b.promise, 3, record('b'));
  await clock.advance(100);
  c.resolve(7);
  await clock.advance(0);
  assert.equal(slot.outstanding, 2);
  await clock.advance(5000);
  assert.deepEqual(outcomes, [
    { name: 'c', at: 1100, code: undefined, value: 7 },
    { name: 'a', at: 1500, code: 'ERR_TIMEOUT', value: undefined },
    { name: 'b', at: 2500, code: 'ERR_TIMEOUT', value: undefined },
  ]);
  assert.equal(slot.outstanding, 2, 'timed-out calls stay outstanding until the link settles them');
  const below = slot.settledBelow(4, slot.generation);
  let settled = false;
  void below.then(() => (settled = true));
  a.resolve(1);
  b.reject(new Error('late failure'));
  await clock.advance(0);
  assert.equal(slot.outstanding, 0);
  assert.ok(settled, 'settledBelow resolves once the late answers are in');
  assert.equal(outcomes.length, 3, 'a late answer calls no callback again');
});

test('call() resolves with the value, rejects with the link error, and rejects with ERR_TIMEOUT when the link is silent', async () => {
  const clock = new SimClock();
  const slot = new ReplicaSlot({ id: 'r2' } as ReplicaLink, clock, 1000, silentLogger());
  assert.equal(await clock.run(slot.call('ok', () => Promise.resolve(5)), 10), 5);
  await assert.rejects(clock.run(slot.call('bad', () => Promise.reject(Object.assign(new Error('no'), { code: 'ERR_NO_SPACE' }))), 10), { code: 'ERR_NO_SPACE' });
  await assert.rejects(
    clock.run(
      slot.call('sync', () => {
        throw new Error('thrown before a promise');
      }),
      10,
    ),
    /thrown before a promise/,
  );
  const silent = pending<number>();
  const started = clock.now();
  await assert.rejects(clock.run(slot.call('silent', () => silent.promise), 5000), { code: 'ERR_TIMEOUT' });
  assert.equal(clock.now() - started, 1000);
});
