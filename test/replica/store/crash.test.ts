import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { CRASH_VOLUME, crashModel } from './crash-workload';
import { open, pattern, tempDir } from './helpers';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

/** Runs the child writer and SIGKILLs it after `ms`; returns the highest seq it reported flushed. */
function runAndKill(dir: string, seed: number, ms: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'crash-child.js'), '--crash-child', dir, String(seed)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let flushed = 0;
    let started = false;
    let buf = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const [what, n] = buf.slice(0, nl).split(' ');
        buf = buf.slice(nl + 1);
        if (what === 'flushed') flushed = Math.max(flushed, Number(n));
        if (what === 'start' && !started) {
          started = true;
          setTimeout(() => child.kill('SIGKILL'), ms);
        }
      }
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited with ${code}: ${err}`));
      else resolve(flushed);
    });
  });
}

test('SIGKILL mid-write: every flushed write survives, no block holds data never written, snapshots stay exact', async () => {
  const dir = tempDir('trireme-crash-');
  dirs.push(dir);
  const seed = Date.now() % 1e9;
  let lastFlushed = 0;
  for (let round = 0; round < 4; round++) {
    const flushed = await runAndKill(dir, seed, 300 + Math.floor(Math.random() * 900));
    lastFlushed = Math.max(lastFlushed, flushed);
    const s = await open(dir);
    try {
      const info = s.info();
      assert.equal(info.state, 'ok', `seed ${seed} round ${round}: ${info.error}`);
      assert.ok(info.lastSeq >= lastFlushed, `seed ${seed} round ${round}: recovered seq ${info.lastSeq} < flushed ${lastFlushed}`);
      // The log is a prefix of the appends: the image must be exactly writes 1..lastSeq,
      // and each surviving snapshot exactly writes 1..its seq.
      const views: [string | undefined, number][] = [[undefined, info.lastSeq], ...s.listSnapshots().map((x): [string, number] => [x.name, x.seq])];
      assert.ok(views.length > 1 || lastFlushed < 32 * 4, `seed ${seed} round ${round}: no snapshot survived`);
      for (const [snap, upTo] of views) {
        const model = crashModel(seed, upTo);
        const image = await s.read(0, CRASH_VOLUME, snap);
        for (let lba = 0; lba < CRASH_VOLUME / BLOCK_SIZE; lba++) {
          const seq = model.get(lba);
          const want = seq === undefined ? Buffer.alloc(BLOCK_SIZE) : pattern(seq, lba);
          const got = image.subarray(lba * BLOCK_SIZE, (lba + 1) * BLOCK_SIZE);
          if (!got.equals(want)) assert.fail(`seed ${seed} round ${round} ${snap ?? 'head'}: lba ${lba} should hold write ${seq ?? 'none'} (up to ${upTo})`);
        }
      }
    } finally {
      await s.close();
    }
  }
  assert.ok(lastFlushed > 0, 'the child flushed something before being killed');
});
