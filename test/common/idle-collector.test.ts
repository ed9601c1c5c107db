import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const REPO = resolve(__dirname, '..', '..', '..');
const COLLECTOR = resolve(__dirname, '..', '..', 'src', 'common', 'idle-collector.js');
const LOGGER = resolve(__dirname, '..', '..', 'src', 'common', 'logger.js');

/**
 * A fresh node process (the test runner has no gc() of its own) runs the
 * collector with 200 ms windows through: idle, a burst of 1 MiB buffers
 * dropped at once, idle, a second burst, idle. It reports the collections
 * after each phase and the live ArrayBuffer bytes when the burst ended and
 * after the idle phase. A pool (a release hook) keeps 8 MiB of spare buffers
 * from the first burst until the process turns idle; a second hook throws.
 */
const SCRIPT = `
const { IdleCollector, onIdleRelease } = require(${JSON.stringify(COLLECTOR)});
const { silentLogger } = require(${JSON.stringify(LOGGER)});
const { Registry } = require('prom-client');
const registry = new Registry();
const realGc = globalThis.gc;
let runs = 0;
const collector = new IdleCollector({ logger: silentLogger(), registry, metricName: 'trireme_test_idle_collections_total', role: 'test', windowMs: 200, ...(realGc ? { gc: () => { runs++; realGc(); } } : {}) });
let spare = [];
let releases = 0;
let throws = 0;
onIdleRelease(() => { throws++; throw new Error('a broken hook'); });
const removeSpare = onIdleRelease(() => { releases++; spare = []; });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
// Work, then 16 MiB of buffers that die as the work ends.
const burst = () => {
  const end = Date.now() + 700;
  let kept = [];
  while (Date.now() < end) { kept.push(Buffer.allocUnsafeSlow(1 << 20).fill(1)); if (kept.length > 24) kept = []; }
  return Array.from({ length: 16 }, () => Buffer.allocUnsafeSlow(1 << 20));
};
(async () => {
  const out = {};
  await sleep(800);
  out.afterFirstIdle = runs;
  let tail = burst();
  spare = Array.from({ length: 8 }, () => Buffer.allocUnsafeSlow(1 << 20));
  out.buffersAfterBurst = process.memoryUsage().arrayBuffers;
  tail = null;
  await sleep(1000);
  out.afterBurstIdle = runs;
  out.buffersAfterIdle = process.memoryUsage().arrayBuffers;
  await sleep(800);
  out.afterLongerIdle = runs;
  out.releasesAfterIdle = releases;
  removeSpare();
  burst();
  await sleep(1000);
  out.afterSecondBurst = runs;
  out.releases = releases;
  out.throws = throws;
  out.metric = (await registry.getSingleMetric('trireme_test_idle_collections_total').get()).values[0]?.value ?? 0;
  collector.close();
  process.stdout.write(JSON.stringify(out));
})();
`;

async function run(nodeFlags: string[]): Promise<Record<string, number>> {
  const { stdout } = await promisify(execFile)(process.execPath, [...nodeFlags, '-e', SCRIPT], { cwd: REPO, timeout: 60_000 });
  return JSON.parse(stdout) as Record<string, number>;
}

const MiB = 1024 * 1024;

test('one full collection runs when the process turns idle after work, and none without work', async () => {
  const r = await run(['--expose-gc']);
  assert.equal(r.afterFirstIdle, 0, 'no collection before any work');
  assert.equal(r.afterBurstIdle, 1, 'one collection once idle after the burst');
  assert.equal(r.afterLongerIdle, 1, 'no second collection without new work');
  assert.equal(r.afterSecondBurst, 2, 'a collection after the next burst');
  assert.equal(r.metric, 2);
  assert.ok(r.buffersAfterBurst >= 24 * MiB, `the burst left ${r.buffersAfterBurst} bytes of buffers`);
  assert.ok(r.buffersAfterIdle < 2 * MiB, `after the idle collection ${r.buffersAfterIdle} bytes of buffers are left (the pool's spares included)`);
  assert.equal(r.releasesAfterIdle, 1, 'the release hook ran with the collection');
  assert.equal(r.releases, 1, 'a removed hook runs no more');
  assert.equal(r.throws, 2, 'a hook that throws runs at each collection and does not stop the collection');
});

test('without an exposed gc() the collector stays off', async () => {
  const r = await run([]);
  assert.equal(r.metric, 0);
});
