import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TaskSet } from '../../../src/iscsi/scsi/task-set';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { A, cdb10, harness, pattern } from './harness';

function deferred(): { promise: Promise<void>; resolve: () => void } {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}

test('ORDERED waits for earlier tasks and holds back later ones; HEAD OF QUEUE does not wait', async () => {
  const tasks = new TaskSet();
  const log: string[] = [];
  const first = deferred();
  const a = tasks.run('simple', async () => {
    await first.promise;
    log.push('simple-1');
  });
  const b = tasks.run('ordered', () => {
    log.push('ordered');
  });
  const c = tasks.run('simple', () => {
    log.push('simple-2');
  });
  const d = tasks.run('head-of-queue', () => {
    log.push('head');
  });
  await d;
  assert.deepEqual(log, ['head']);
  assert.equal(tasks.size, 3);
  first.resolve();
  await Promise.all([a, b, c]);
  assert.deepEqual(log, ['head', 'simple-1', 'ordered', 'simple-2']);
  assert.equal(tasks.size, 0);
});

test('a failing ORDERED task still releases the tasks behind it', async () => {
  const tasks = new TaskSet();
  const failed = tasks.run('ordered', () => {
    throw new Error('boom');
  });
  const after = tasks.run('simple', () => 'ran');
  await assert.rejects(failed, /boom/);
  assert.equal(await after, 'ran');
});

/** A real MemoryDevice whose writes wait for the test to let them through: the only way to hold a task in the task set. */
class HeldDevice extends MemoryDevice {
  readonly gate = deferred();

  override async write(offset: number, data: Buffer): Promise<void> {
    await this.gate.promise;
    return super.write(offset, data);
  }
}

test('through the target: an ORDERED read sees a SIMPLE write that entered before it', async () => {
  const device = new HeldDevice({ size: 1 << 20, id: 'held' });
  const h = await harness(device);
  const write = h.run(cdb10(0x2a, 4, 1), { dataOut: pattern(512, 8) });
  const read = h.target.execute({
    nexus: A,
    lun: 0,
    cdb: Buffer.from(cdb10(0x28, 4, 1)),
    expectedDataTransferLength: 512,
    taskAttribute: 'ordered',
  });
  await new Promise((resolve) => setTimeout(resolve, 5));
  device.gate.resolve();
  assert.equal((await write).status, 0);
  assert.deepEqual((await read).dataIn, pattern(512, 8));
});
