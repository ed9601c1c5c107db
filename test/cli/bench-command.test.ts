import assert from 'node:assert/strict';
import { test } from 'node:test';
import { trireme } from './stack-helpers';

test('trireme bench lists its suites and refuses an unknown one', () => {
  const help = trireme(['bench', '--help']);
  assert.equal(help.status, 0);
  for (const suite of ['target', 'volume', 'store', 'wire']) assert.match(help.stdout, new RegExp(`${suite}:`));

  const unknown = trireme(['bench', 'tape']);
  assert.equal(unknown.status, 1);
  assert.match(unknown.stderr, /unknown benchmark "tape": expected one of target, volume, store, wire/);
});
