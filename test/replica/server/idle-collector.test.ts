import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';

const REPO = resolve(__dirname, '..', '..', '..', '..');
const COLLECTOR = resolve(__dirname, '..', '..', '..', 'src', 'replica', 'server', 'idle-collector.js');
const LOGGER = resolve(__dirname, '..', '..', '..', 'src', 'common', 'logger.js');

/**
 * A fresh node process (the test runner has no gc() of its own) runs the
 * collector with 200 ms windows through: idle, a burst of 1 MiB buffers
 * dropped at once, idle, a second burst, idle. It reports the collections
 * after each phase and the live ArrayBuffer bytes when the burst ended and
 * after the idle phase.
 */
const SCRIPT = `
const { IdleCollector } = require(${JSON.stringify(COLLECTOR)});
const { silentLogger } = require(${JSON.stringify(LOGGER)});
const { Registry } = require('prom-client');
const registry = new Registry();
const realGc = globalThis.gc;
let runs = 0;
const collector = new IdleCollector({ logger: silentLogger(), registry, windowMs: 200, ...(realGc ? { gc: () => { runs++; realGc(); } } : {}) });
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
  out.buffersAfterBurst = process.memoryUsage().arrayBuffers;
  tail = null;
  await sleep(1000);
  out.afterBurstIdle = runs;
  out.buffersAfterIdle = process.memoryUsage().arrayBuffers;
  await sleep(800);
  out.afterLongerIdle = runs;
  burst();
  await sleep(1000);
  out.afterSecondBurst = runs;
  out.metric = (await registry.getSingleMetric('trireme_replica_idle_collections_total').get()).values[0]?.value ?? 0;
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
  assert.ok(r.buffersAfterBurst >= 16 * MiB, `the burst left ${r.buffersAfterBurst} bytes of buffers`);
  assert.ok(r.buffersAfterIdle < 2 * MiB, `after the idle collection ${r.buffersAfterIdle} bytes of buffers are left`);
});

test('without an exposed gc() the collector stays off', async () => {
  const r = await run([]);
  assert.equal(r.metric, 0);
});
