/**
 * Child process of crash.test.ts: writes to a store with flushes and prints
 * "flushed <seq>" after each flush, until it is SIGKILLed. Does nothing unless
 * started with --crash-child (the test runner also loads every file under test/).
 */
import { silentLogger } from '../../../src/common/logger';
import { openReplicaStore } from '../../../src/replica/store';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { CRASH_VOLUME, crashWrite } from './crash-workload';

async function main(dir: string, seed: number): Promise<void> {
  const store = await openReplicaStore({
    dir,
    size: CRASH_VOLUME,
    logger: silentLogger(),
    segmentSize: 1 << 20,
    checkpointBytes: 2 << 20,
    compaction: { enabled: true, intervalMs: 50, minDeadRatio: 0.3, bytesPerSecond: 64 << 20 },
  });
  // A restarted child finds epoch 1 already promised; a claim must be strictly above.
  if (store.info().epoch < 1) await store.setEpoch(1);
  let seq = store.info().lastSeq;
  process.stdout.write(`start ${seq}\n`);
  // Bounded: the parent kills this long before the end.
  for (let round = 0; round < 100_000; round++) {
    const inflight: Promise<void>[] = [];
    for (let k = 0; k < 32; k++) {
      seq++;
      const w = crashWrite(seed, seq);
      inflight.push(store.write(1, seq, w.lba * BLOCK_SIZE, w.data));
    }
    await Promise.all(inflight);
    // A snapshot every 4 rounds at the last write's seq; the oldest goes once there are 3,
    // so compaction has snapshot-only records to keep and to free.
    if (round % 4 === 3) {
      await store.createSnapshot(`at-${seq}`, 1, seq);
      const snaps = store.listSnapshots();
      if (snaps.length > 3) await store.deleteSnapshot(snaps[0].name);
    }
    await store.flush(1);
    process.stdout.write(`flushed ${seq}\n`);
  }
}

/** Writes seqs 1..count, flushes, says "ready" and waits to be killed: a log with no checkpoint after it. */
async function writeAndWait(dir: string, seed: number, count: number): Promise<void> {
  const store = await openReplicaStore({ dir, size: CRASH_VOLUME, logger: silentLogger(), compaction: { enabled: false } });
  for (let seq = 1; seq <= count; seq++) {
    const w = crashWrite(seed, seq);
    await store.write(0, seq, w.lba * BLOCK_SIZE, w.data);
  }
  await store.flush(0);
  process.stdout.write('ready\n');
  setTimeout(() => process.exit(2), 60_000);
}

if (process.argv[2] === '--write-and-wait') {
  writeAndWait(process.argv[3], Number(process.argv[4]), Number(process.argv[5])).catch((err: unknown) => {
    process.stderr.write(`crash child failed: ${String(err)}\n`);
    process.exit(1);
  });
}

if (process.argv[2] === '--crash-child') {
  main(process.argv[3], Number(process.argv[4])).catch((err: unknown) => {
    process.stderr.write(`crash child failed: ${String(err)}\n`);
    process.exit(1);
  });
}
