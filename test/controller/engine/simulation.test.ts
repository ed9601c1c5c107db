import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Schedule } from './sim/schedule';

// Deterministic simulation: the engine against in-memory replicas on a virtual
// clock, under seeded random crashes, stops, partitions, compactions and
// controller restarts, with invariants 1-8 checked after every step. A failure
// names its seed; TRIREME_SIM_SEED=<seed> replays that one schedule.
const BUDGET_MS = Number(process.env.TRIREME_SIM_BUDGET_MS ?? 60_000);
const MAX_SCHEDULES = Number(process.env.TRIREME_SIM_SCHEDULES ?? 3000);
const FIRST_SEED = Number(process.env.TRIREME_SIM_FIRST_SEED ?? 1);
const STEPS = 60;

test('seeded schedules keep every replication invariant', { timeout: BUDGET_MS + 120_000 }, async () => {
  const only = process.env.TRIREME_SIM_SEED;
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: MAX_SCHEDULES }, (_, i) => FIRST_SEED + i);
  const started = Date.now();
  const totals = { schedules: 0, acked: 0, failed: 0, reads: 0, controllerRestarts: 0, staleWrites: 0 };
  for (const seed of seeds) {
    if (Date.now() - started > BUDGET_MS) break;
    const stats = await new Schedule(seed).run(STEPS);
    totals.schedules++;
    totals.acked += stats.acked;
    totals.failed += stats.failed;
    totals.reads += stats.reads;
    totals.controllerRestarts += stats.controllerRestarts;
    totals.staleWrites += stats.staleWrites;
  }
  process.stderr.write(`simulation: ${JSON.stringify(totals)} in ${Date.now() - started} ms\n`);
  assert.ok(totals.schedules >= Math.min(seeds.length, 200), `only ${totals.schedules} schedules ran`);
  assert.ok(totals.acked > totals.schedules * 5, 'schedules acknowledged writes');
  assert.ok(totals.failed > 0 || seeds.length === 1, 'some schedules lost their quorum');
  assert.ok(totals.staleWrites > 0 || seeds.length === 1, 'old controllers were made to write');
});
