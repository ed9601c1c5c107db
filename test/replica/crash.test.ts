import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicaClient } from '../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../src/replica/client/control-client';
import { blockPayload, identifyBlock } from './support/replica-harness';
import { TRIREME_ENTRY } from '../support/trireme-cli';

// The CLI of this very build, run as bin/trireme.js does minus its build-on-first-use
// step: a test must exercise the code it was compiled with, not trigger a rebuild.
const BLOCKS = 512;
const ROUNDS = 6;
const DEPTH = 16;
const FLUSH_EVERY = 48;

interface Ready {
  dataPort: number;
  grpcPort: number;
}

/** Starts `trireme replica` as a real process and waits for its ready line on stdout. */
async function startReplica(dir: string, create: boolean): Promise<{ child: ChildProcess; ready: Ready; stderr: () => string }> {
  const args = [TRIREME_ENTRY, 'replica', '--dir', dir, '--listen', '127.0.0.1:0', ...(create ? ['--size', '16M'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
  const ready = await new Promise<Ready>((resolveReady, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no ready line within 30 s; stderr: ${err}`)), 30_000);
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
      const line = out.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) {
        clearTimeout(timer);
        resolveReady(JSON.parse(line) as Ready);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`replica exited with ${code} before ready; stderr: ${err}`));
    });
  });
  return { child, ready, stderr: () => err };
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/**
 * Model of what the replica must hold. `issued[b]` is every version ever sent
 * to block b (a version is the request's seq), `unmapped[b]` the versions that
 * were unmaps (the block reads as zeros); `floor[b]` the newest version of b
 * acknowledged before a flush that was then acknowledged, or acknowledged as
 * FUA: it, or something newer, must survive.
 */
class Model {
  readonly issued = Array.from({ length: BLOCKS }, () => new Set<number>());
  readonly unmapped = Array.from({ length: BLOCKS }, () => new Set<number>());
  readonly acked = new Map<number, number>();
  readonly floor = new Map<number, number>();

  check(b: number, seen: ReturnType<typeof identifyBlock>): string | undefined {
    const floor = this.floor.get(b);
    if (seen === 'garbage') return `block ${b} holds data that was never written`;
    if (seen === 'zero') {
      if (floor === undefined || [...this.unmapped[b]].some((v) => v >= floor)) return undefined;
      return `block ${b} lost flushed version ${floor}`;
    }
    if (seen.block !== b) return `block ${b} holds block ${seen.block}'s data`;
    if (!this.issued[b].has(seen.version)) return `block ${b} holds version ${seen.version}, never written there`;
    if (floor !== undefined && seen.version < floor) return `block ${b} went back to version ${seen.version} below flushed ${floor}`;
    return undefined;
  }
}

test('SIGKILL at random points never loses a flushed or FUA write nor returns unwritten data', { timeout: 240_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'trireme-crash-'));
  dirs.push(base);
  const dir = join(base, 'replica');
  const model = new Model();
  let seq = 0;
  let flushes = 0;
  let lastEpoch = 0;
  // mulberry32: deterministic, so a failing run repeats its block choices and kill delays.
  let state = 12345;
  const rand = (n: number): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };

  for (let round = 0; round < ROUNDS; round++) {
    const { child, ready, stderr } = await startReplica(dir, round === 0);
    const client = await ReplicaClient.connect({ host: '127.0.0.1', port: ready.dataPort, requestTimeoutMs: 5000 });
    const control = new ReplicaControlClient(`127.0.0.1:${ready.dataPort}`);
    try {
      // Verify what the previous incarnation left behind.
      const status = await control.status();
      assert.equal(status.state, 'ok', `replica recovered cleanly: ${status.error ?? ''}`);
      assert.ok(status.epoch >= lastEpoch, `epoch ${status.epoch} kept (set ${lastEpoch} before the kill)`);
      for (let b = 0; b < BLOCKS; b += 64) {
        const data = await client.read(status.epoch, b * 4096, 64 * 4096);
        for (let i = 0; i < 64; i++) {
          const problem = model.check(b + i, identifyBlock(data.subarray(i * 4096, (i + 1) * 4096)));
          assert.equal(problem, undefined, `round ${round}: ${problem}\n${stderr()}`);
        }
      }
      if (round === ROUNDS - 1) break;

      lastEpoch = status.epoch + 1;
      await control.setEpoch(lastEpoch);
      const epoch = lastEpoch;
      seq = Math.max(seq, status.lastSeq);
      let killed = false;
      const killAfter = 150 + rand(600);
      const killer = sleep(killAfter).then(() => {
        killed = true;
        child.kill('SIGKILL');
      });
      const writer = async (): Promise<void> => {
        while (!killed) {
          const b = rand(BLOCKS);
          const s = ++seq;
          const kind = rand(16);
          model.issued[b].add(s);
          try {
            if (kind === 0) {
              model.unmapped[b].add(s);
              await client.unmap(epoch, s, b * 4096, 4096);
            } else {
              await client.write(epoch, s, b * 4096, blockPayload(b, s), { fua: kind === 1 });
            }
            if ((model.acked.get(b) ?? 0) < s) model.acked.set(b, s);
            if (kind === 1 && (model.floor.get(b) ?? 0) < s) model.floor.set(b, s);
            if (s % FLUSH_EVERY === 0) {
              const covered = new Map(model.acked);
              await client.flush(epoch);
              flushes++;
              for (const [blk, v] of covered) if ((model.floor.get(blk) ?? 0) < v) model.floor.set(blk, v);
            }
          } catch (err) {
            if (!killed) throw err;
            return;
          }
        }
      };
      await Promise.all([...Array.from({ length: DEPTH }, writer), killer]);
      await new Promise<void>((r) => (child.exitCode !== null || child.signalCode !== null ? r() : child.once('exit', () => r())));
      model.acked.clear();
    } finally {
      client.close();
      control.close();
      child.kill('SIGKILL');
    }
  }
  assert.ok(flushes >= ROUNDS, `flushes acknowledged across rounds: ${flushes}`);
  assert.ok(model.floor.size > BLOCKS / 4, `flushed blocks checked: ${model.floor.size} (writes ${seq}, flushes ${flushes})`);
});
