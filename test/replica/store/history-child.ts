/**
 * Child process of history.test.ts: writes seqs 1-3 under epoch 1 and 4-6
 * under epoch 2, flushes, says "ready" and waits to be SIGKILLed, leaving
 * records after the last checkpoint. Does nothing unless started with
 * --history-child (the test runner also loads every file under test/).
 */
import { silentLogger } from '../../../src/common/logger';
import { openReplicaStore } from '../../../src/replica/store';
import { BLOCK_SIZE } from '../../../src/replica/store-types';

async function main(dir: string): Promise<void> {
  const store = await openReplicaStore({ dir, size: 1 << 20, logger: silentLogger(), compaction: { enabled: false } });
  await store.setEpoch(1);
  for (let seq = 1; seq <= 3; seq++) await store.write(1, seq, seq * BLOCK_SIZE, Buffer.alloc(BLOCK_SIZE, seq));
  await store.setEpoch(2);
  for (let seq = 4; seq <= 6; seq++) await store.write(2, seq, seq * BLOCK_SIZE, Buffer.alloc(BLOCK_SIZE, seq));
  await store.beginRebuild(5);
  await store.flush(2);
  process.stdout.write('ready\n');
  setTimeout(() => process.exit(2), 60_000);
}

if (process.argv[2] === '--history-child') {
  main(process.argv[3]).catch((err: unknown) => {
    process.stderr.write(`history child failed: ${String(err)}\n`);
    process.exit(1);
  });
}
