import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Counter, Registry } from 'prom-client';
import { FastHistogram, counterCell, flushCells } from '../../src/iscsi/io-metrics';

test('counter cells reach the prom-client counter when the registry is read', async () => {
  const registry = new Registry();
  const counter = new Counter({ name: 'trireme_test_things_total', help: 'things', labelNames: ['kind'], registers: [registry], collect: flushCells });
  const red = counterCell(counter, { kind: 'red' });
  const blue = counterCell(counter, { kind: 'blue' });
  red.inc();
  red.inc(4);
  blue.inc();
  let text = await registry.metrics();
  assert.match(text, /trireme_test_things_total\{kind="red"\} 5\n/);
  assert.match(text, /trireme_test_things_total\{kind="blue"\} 1\n/);
  // Counts are added once: a second read without new increments shows the same totals.
  red.inc();
  text = await registry.metrics();
  assert.match(text, /trireme_test_things_total\{kind="red"\} 6\n/);
  assert.match(text, /trireme_test_things_total\{kind="blue"\} 1\n/);
  const json = await registry.getSingleMetric('trireme_test_things_total')?.get();
  assert.deepEqual(json?.values.map((v) => [v.labels.kind, v.value]).sort(), [['blue', 1], ['red', 6]]);
});

test('a fast histogram exposes cumulative buckets, sum and count like prom-client', async () => {
  const registry = new Registry();
  registry.setDefaultLabels({ role: 'test' });
  const histogram = new FastHistogram('trireme_test_op_seconds', 'op time', 'class', [0.001, 0.01, 0.1], registry);
  const read = histogram.child('read');
  for (const v of [0.0005, 0.001, 0.005, 0.05, 0.5]) read.observe(v);
  histogram.child('write').observe(0.002);
  const text = await registry.metrics();
  assert.match(text, /# TYPE trireme_test_op_seconds histogram/);
  const line = (le: string, cls: string): RegExp => new RegExp(`trireme_test_op_seconds_bucket\\{le="${le.replace('+', '\\+')}",class="${cls}",role="test"\\} (\\d+)`);
  const bucket = (le: string, cls = 'read'): number => Number(line(le, cls).exec(text)?.[1]);
  // A value on a bound counts in that bucket (le: less or equal).
  assert.deepEqual(['0.001', '0.01', '0.1', '+Inf'].map((le) => bucket(le)), [2, 3, 4, 5]);
  assert.deepEqual(['0.001', '0.01', '0.1', '+Inf'].map((le) => bucket(le, 'write')), [0, 1, 1, 1]);
  assert.match(text, /trireme_test_op_seconds_count\{class="read",role="test"\} 5\n/);
  const sum = Number(/trireme_test_op_seconds_sum\{class="read",role="test"\} (\S+)/.exec(text)?.[1]);
  assert.ok(Math.abs(sum - 0.5565) < 1e-12, `sum ${sum}`);
  histogram.reset();
  assert.match(await registry.metrics(), /trireme_test_op_seconds_count\{class="read",role="test"\} 0\n/);
});
