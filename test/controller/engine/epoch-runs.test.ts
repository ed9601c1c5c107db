import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { chooseSource, divergencePoint, epochAt } from '../../../src/controller/engine/epoch-runs';
import { EpochRunLog } from '../../../src/replica';
import type { EpochRun, ReplicaLinkStatus } from '../../../src/controller/engine/replica-link';

/** "1:1-5 2:6-9" -> runs */
const runs = (spec: string): EpochRun[] =>
  spec
    .split(' ')
    .filter(Boolean)
    .map((r) => {
      const [epoch, range] = r.split(':');
      const [from, to] = range.split('-').map(Number);
      return { epoch: Number(epoch), from, to };
    });

const status = (spec: string, lastSeq: number, rebuildBase: number | null = null, state: 'ok' | 'error' = 'ok'): ReplicaLinkStatus => ({
  replicaId: 'x',
  epoch: 9,
  lastSeq,
  durableSeq: lastSeq,
  size: 4096,
  state,
  runs: runs(spec),
  rebuildBase,
});

describe('divergence point (invariant 4)', () => {
  // replica runs, replica position, source runs, source position, expected cut
  const cases: Array<[string, number, string, number, number, string]> = [
    ['1:1-5', 5, '1:1-9', 9, 5, 'a lagging prefix keeps everything'],
    ['1:1-9', 9, '1:1-9', 9, 9, 'identical logs'],
    ['1:1-6', 6, '1:1-5 2:6-9', 9, 5, 'an older epoch at seq 6: cut back to where epoch 2 began'],
    ['1:1-8', 8, '1:1-5 2:6-9', 9, 5, 'a longer divergent tail cuts back to the same point'],
    ['1:1-3 3:4-7', 7, '1:1-3 2:4-5 4:6-9', 9, 3, 'diverged at the first seq of a missed epoch'],
    ['1:1-5 2:7-8', 8, '1:1-5 2:6-9', 9, 5, 'a hole (seq 6 never received) counts as divergence'],
    ['1:1-5 2:7-8', 8, '1:1-5 2:7-9', 9, 8, 'the same hole on both sides agrees'],
    ['', 0, '1:1-9', 9, 0, 'an empty replica'],
    ['1:1-9', 9, '1:1-5', 5, 5, 'a replica ahead of the source is cut to the source'],
  ];
  for (const [r, rp, s, sp, expected, why] of cases) {
    test(`${r || '(empty)'} vs ${s} -> ${expected}: ${why}`, () => {
      assert.equal(divergencePoint({ runs: runs(r), position: rp }, { runs: runs(s), position: sp }), expected);
    });
  }
});

describe('choosing the source', () => {
  test('highest epoch of the last whole record wins over a longer older log', () => {
    const chosen = chooseSource([
      { id: 'a', status: status('1:1-12', 12) },
      { id: 'b', status: status('1:1-5 2:6-8', 8) },
    ]);
    assert.equal(chosen?.id, 'b');
  });

  test('then the highest position', () => {
    const chosen = chooseSource([
      { id: 'a', status: status('1:1-5 2:6-8', 8) },
      { id: 'b', status: status('1:1-5 2:6-9', 9) },
    ]);
    assert.equal(chosen?.id, 'b');
  });

  test('a replica mid-rebuild counts only up to its rebuild base', () => {
    const chosen = chooseSource([
      { id: 'a', status: status('1:1-2 2:10-30', 30, 2) },
      { id: 'b', status: status('1:1-5 2:6-20', 20) },
    ]);
    assert.equal(chosen?.id, 'b');
  });

  test('a replica in the error state is never the source', () => {
    const chosen = chooseSource([
      { id: 'a', status: status('1:1-9', 9, null, 'error') },
      { id: 'b', status: status('1:1-3', 3) },
    ]);
    assert.equal(chosen?.id, 'b');
  });

  test('ties go to the lowest id, whatever the order given', () => {
    assert.equal(chooseSource([{ id: 'b', status: status('1:1-3', 3) }, { id: 'a', status: status('1:1-3', 3) }])?.id, 'a');
  });
});

describe('run bookkeeping', () => {
  test('a replica history merges neighbours and fills holes in order', () => {
    const history = new EpochRunLog();
    for (const seq of [1, 2, 5, 3, 4]) history.note(1, seq);
    assert.deepEqual(history.runs, runs('1:1-5'));
    history.note(2, 7);
    assert.deepEqual(history.runs, runs('1:1-5 2:7-7'));
    assert.equal(epochAt(history.runs, 6), undefined);
  });

  test('a finished rebuild takes the source history below the cut and keeps the rest', () => {
    const history = new EpochRunLog(runs('0:1-3 2:8-10'));
    history.replacePrefix(7, runs('1:1-4 2:5-7'));
    assert.deepEqual(history.runs, runs('1:1-4 2:5-10'));
  });
});
