import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../../src/common/logger';
import { NetworkReplicaLink } from '../../../src/controller/engine/network-replica-link';
import { MemoryReplicaStore } from '../../../src/replica/memory-store';
import { blockPayload, identifyBlock, startHarness, type Harness, type StoreKind } from '../../replica/support/replica-harness';

// The network link over a real replica server (TCP, the real protocol and
// client), with the store recording the order in which mutations reach it.

const VOLUME = 'vol-link';

/** The in-memory store, remembering the seq of every write and unmap in arrival order. */
class RecordingStore extends MemoryReplicaStore {
  readonly arrived: number[] = [];

  override write(epoch: number, seq: number, offset: number, data: Buffer, fua?: boolean): Promise<void> {
    this.arrived.push(seq);
    return super.write(epoch, seq, offset, data, fua);
  }

  override unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    this.arrived.push(seq);
    return super.unmap(epoch, seq, offset, length);
  }
}

let store: RecordingStore;
const RECORDING: StoreKind = {
  name: 'recording memory store',
  async open(o) {
    store = new RecordingStore({ size: o.size, volumeId: VOLUME });
    return { store, cleanup: () => undefined };
  },
};

let h: Harness;
let link: NetworkReplicaLink;

before(async () => {
  h = await startHarness(RECORDING, { volumeId: VOLUME });
  link = new NetworkReplicaLink({ address: `127.0.0.1:${h.server.dataPort}`, logger: silentLogger(), timeoutMs: 5000, volumeId: VOLUME });
  await link.setEpoch(1);
  await link.ping();
});

after(async () => {
  await link.close();
  await h.close();
});

test('writes, unmaps and flushes issued in one turn reach the replica in seq order', async () => {
  // Regression guard: a mutation that took one promise step more than the
  // next (an unmap behind a write on a faster path) reached the replica after it.
  const ops = [
    link.write(1, 1, 0, blockPayload(0, 1), false),
    link.unmap(1, 2, 0, 4096),
    link.write(1, 3, 4096, blockPayload(1, 3), false),
    link.flush(1),
    link.unmap(1, 4, 4096, 4096),
    link.write(1, 5, 0, blockPayload(0, 5), true),
    link.write(1, 6, 8192, blockPayload(2, 6), false),
  ];
  await Promise.all(ops);
  assert.deepEqual(store.arrived, [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(identifyBlock(await link.read(0, 4096)), { block: 0, version: 5 });
  assert.equal(identifyBlock(await link.read(4096, 4096)), 'zero');
  assert.deepEqual(identifyBlock(await link.read(8192, 4096)), { block: 2, version: 6 });
  const status = await link.status();
  assert.equal(status.lastSeq, 6);
  assert.ok(status.durableSeq >= 5, `the FUA write is durable (durableSeq ${status.durableSeq})`);
});

test('replica refusals reach the engine as link error codes on every path', async () => {
  await assert.rejects(link.write(0, 7, 0, blockPayload(0, 7), false), { code: 'ERR_STALE_EPOCH' });
  await assert.rejects(link.unmap(1, 8, 64 * 1024 * 1024, 4096), { code: 'ERR_OUT_OF_RANGE' });
  await assert.rejects(link.read(100, 4096), { code: 'ERR_OUT_OF_RANGE' });
  assert.deepEqual(identifyBlock(await link.read(0, 4096)), { block: 0, version: 5 }, 'the connection still serves');
});
