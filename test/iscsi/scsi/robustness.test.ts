import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { silentLogger } from '../../../src/common/logger';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { createScsiTarget } from '../../../src/iscsi/scsi';
import { A, B, assertCheck, cdb10, harness, pattern } from './harness';

/** Deterministic PRNG (xorshift32) so a failing case can be replayed from its seed. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}

const VALID_STATUSES = new Set([0x00, 0x02, 0x18]);

test('random CDBs on every opcode never crash, hang or return malformed sense', async () => {
  const device = new MemoryDevice({ size: 1024 * 1024, id: 'fuzz' });
  const h = await harness(device, [A, B]);
  const next = prng(0x5eed);
  const started = Date.now();
  let checks = 0;
  for (let i = 0; i < 6000; i += 1) {
    const opcode = i < 2560 ? i % 256 : next() & 0xff;
    const length = [6, 10, 12, 16][next() % 4];
    const cdb = Buffer.alloc(length);
    cdb[0] = opcode;
    // Mostly small values so that some commands get past validation and touch the device.
    for (let b = 1; b < length; b += 1) cdb[b] = next() % 4 === 0 ? next() & 0xff : next() % 3;
    const dataOut = next() % 2 === 0 ? Buffer.alloc((next() % 8) * 512, next() & 0xff) : undefined;
    const result = await h.run(cdb, { dataOut, who: next() % 2 === 0 ? A : B });
    assert.ok(VALID_STATUSES.has(result.status), `opcode ${opcode.toString(16)}: status ${result.status}`);
    if (result.status === 0x02) {
      checks += 1;
      assert.equal(result.sense?.length, 18, `cdb ${cdb.toString('hex')}`);
      assert.equal((result.sense?.[0] ?? 0) & 0x7e, 0x70);
    }
  }
  assert.ok(checks > 1000, 'most random CDBs are refused');
  // Still serving, data intact.
  await h.good(cdb10(0x2a, 0, 1), { dataOut: pattern(512, 77) });
  assert.deepEqual(await h.good(cdb10(0x28, 0, 1)), pattern(512, 77));
  assert.ok(Date.now() - started < 60_000);
});

/** A real MemoryDevice whose writes wait until released by the test: the only way to hold a command in flight. */
class GatedDevice extends MemoryDevice {
  private gate: Promise<void> = Promise.resolve();
  private open: () => void = () => undefined;

  hold(): void {
    this.gate = new Promise((resolve) => {
      this.open = resolve;
    });
  }

  release(): void {
    this.open();
  }

  override async write(offset: number, data: Buffer): Promise<void> {
    await this.gate;
    return super.write(offset, data);
  }
}

test('an aborted command answers TASK ABORTED at once; the device finishes in the background', async () => {
  const device = new GatedDevice({ size: 1024 * 1024, id: 'gated' });
  const h = await harness(device);
  device.hold();
  const controller = new AbortController();
  const pending = h.run(cdb10(0x2a, 8, 1), { dataOut: pattern(512, 3), signal: controller.signal });
  await new Promise((resolve) => setImmediate(resolve));
  controller.abort();
  const result = await pending;
  assert.equal(result.status, 0x40);
  // Already aborted before it starts.
  assert.equal((await h.run(cdb10(0x28, 0, 1), { signal: AbortSignal.abort() })).status, 0x40);
  // A later overlapping write waits for the aborted one to leave the device (range lock), then lands.
  const later = h.run(cdb10(0x2a, 8, 1), { dataOut: pattern(512, 4) });
  device.release();
  assert.equal((await later).status, 0);
  assert.deepEqual(await h.good(cdb10(0x28, 8, 1)), pattern(512, 4));
});

test('metrics count commands by class, errors by sense key, and latency', async () => {
  const h = await harness();
  await h.good(cdb10(0x28, 0, 1));
  assertCheck(await h.run(cdb10(0x28, 64 * 2048, 1)), 0x5, 0x21, 0x00);
  const text = await h.registry.metrics();
  assert.match(text, /trireme_scsi_commands_total\{class="read"\} 2/);
  assert.match(text, /trireme_scsi_errors_total\{sense_key="illegal_request"\} 1/);
  assert.match(text, /trireme_scsi_command_seconds_count\{class="read"\} 2/);
  assert.match(text, /trireme_scsi_status_total\{status="good"\} \d+/);
});

test('two targets can share one registry', async () => {
  const registry = new Registry();
  const make = (iqn: string) => createScsiTarget({ iqn, luns: [{ lun: 0, device: new MemoryDevice({ size: 1 << 20 }) }], logger: silentLogger(), registry });
  const one = make('iqn.2026-01.io.trireme:one');
  const two = make('iqn.2026-01.io.trireme:two');
  assert.equal(one.hasLun(0) && two.hasLun(0), true);
  assert.throws(() => createScsiTarget({ iqn: 'iqn.2026-01.io.trireme:x', luns: [{ lun: 0, device: new MemoryDevice({ size: 1 << 20 }) }, { lun: 0, device: new MemoryDevice({ size: 1 << 20 }) }], logger: silentLogger() }), { code: 'ERR_INVALID_ARGUMENT' });
});
