import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { canMutate, decideAck, nextMode, quorum, volumeState, type AckDecision, type ModeEvent, type ReplicaMode, type TargetState } from '../../../src/controller/engine/ack-policy';

const t = (spec: string): TargetState[] =>
  spec
    .split(' ')
    .filter(Boolean)
    .map((s) => ({ mode: s.replace('+', '') as ReplicaMode, acked: s.endsWith('+') }));

describe('ack policy (invariant 1)', () => {
  test('quorum is floor(n/2)+1', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5].map(quorum),
      [1, 2, 2, 3, 3],
    );
  });

  // targets: mode of each replica sent the mutation, '+' when it acknowledged
  const cases: Array<[string, number, AckDecision, string]> = [
    ['RW+ RW+ RW+', 3, 'ack', 'all three acked'],
    ['RW+ RW+ RW', 3, 'wait', 'one RW still owes its ack'],
    ['RW+ RW+ ERR', 3, 'ack', 'a dropped replica no longer counts'],
    ['RW+ ERR ERR', 3, 'fail', 'one RW of three is below quorum even though it acked'],
    ['RW ERR ERR', 3, 'fail', 'below quorum fails at once instead of waiting'],
    ['RW+ RW+ WO', 3, 'ack', 'a rebuilding replica is sent the write but not waited for'],
    ['RW+ WO+ WO+', 3, 'fail', 'WO acks never make up a quorum'],
    ['RW+ RW WO+', 3, 'wait', 'an RW replica still owes its ack'],
    ['RW+', 1, 'ack', 'a single-replica volume'],
    ['ERR', 1, 'fail', 'a single replica lost'],
    ['RW+ RW+', 2, 'ack', 'two replicas need both'],
    ['RW+ ERR', 2, 'fail', 'two replicas: one is not a quorum'],
    ['RW+ RW+ RW+ ERR ERR', 5, 'ack', 'three of five'],
    ['RW+ RW+ RW ERR ERR', 5, 'wait', 'three of five, one pending'],
    ['RW+ RW+ WO+ ERR ERR', 5, 'fail', 'two RW of five'],
    ['RW+ RW+ RW+ RW', 4, 'wait', 'four replicas: every RW must ack, not just three'],
  ];
  for (const [spec, n, expected, why] of cases) {
    test(`${spec} of ${n} -> ${expected}: ${why}`, () => {
      assert.equal(decideAck(t(spec), n), expected);
    });
  }

  test('mutations are accepted only with a quorum in RW', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((rw) => canMutate(rw, 3)),
      [false, false, true, true],
    );
  });
});

describe('replica mode changes', () => {
  const cases: Array<[ReplicaMode, ModeEvent, ReplicaMode]> = [
    ['RW', 'failed', 'ERR'],
    ['WO', 'failed', 'ERR'],
    ['ERR', 'failed', 'ERR'],
    ['ERR', 'rebuild-start', 'WO'],
    ['WO', 'rebuild-done', 'RW'],
    ['ERR', 'whole', 'RW'],
    // No shortcut back into service: a replica leaves ERR only through WO or start-up.
    ['ERR', 'rebuild-done', 'ERR'],
    ['RW', 'rebuild-start', 'RW'],
    ['WO', 'whole', 'WO'],
    ['RW', 'rebuild-done', 'RW'],
  ];
  for (const [from, event, to] of cases) {
    test(`${from} + ${event} -> ${to}`, () => assert.equal(nextMode(from, event), to));
  }
});

describe('volume state', () => {
  const cases: Array<[string, number, boolean, string]> = [
    ['RW RW RW', 3, false, 'healthy'],
    ['RW RW ERR', 3, false, 'degraded'],
    ['RW RW WO', 3, false, 'rebuilding'],
    ['RW WO ERR', 3, false, 'offline'],
    ['RW RW RW', 3, true, 'offline'],
    ['RW', 1, false, 'healthy'],
  ];
  for (const [modes, n, fenced, state] of cases) {
    test(`${modes}${fenced ? ' fenced' : ''} -> ${state}`, () => {
      assert.equal(volumeState(modes.split(' ') as ReplicaMode[], n, fenced), state);
    });
  }
});
