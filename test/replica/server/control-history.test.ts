import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../../src/replica/client/control-client';
import { DISK, MEMORY, blockPayload, identifyBlock, startHarness, type Harness } from '../support/replica-harness';

const MiB = 1024 * 1024;
const B = 4096;

/** Epoch claims, epoch runs, the rebuild flag and Reset over the real gRPC control service. */
for (const kind of [MEMORY, DISK]) {
  describe(`gRPC history and reset (${kind.name})`, { timeout: 60_000 }, () => {
    let h: Harness;
    let data: ReplicaClient;
    let a: ReplicaControlClient;
    let b: ReplicaControlClient;

    before(async () => {
      h = await startHarness(kind, { size: 4 * MiB, volumeId: 'vol-h', grpc: true });
      data = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
      // Two controllers: one on the gRPC port, one through the data port.
      a = new ReplicaControlClient(`127.0.0.1:${h.server.grpcPort}`);
      b = new ReplicaControlClient(`127.0.0.1:${h.server.dataPort}`);
    });
    after(async () => {
      data.close();
      a.close();
      b.close();
      await h.close();
    });

    test('two controllers claiming the same epoch at once: exactly one wins', async () => {
      for (let epoch = 1; epoch <= 5; epoch++) {
        const race = await Promise.allSettled([a.setEpoch(epoch), b.setEpoch(epoch)]);
        const won = race.filter((r) => r.status === 'fulfilled').length;
        assert.equal(won, 1, `epoch ${epoch}: ${won} winners`);
        const lost = race.find((r) => r.status === 'rejected') as PromiseRejectedResult;
        assert.equal((lost.reason as { code: string }).code, 'ERR_STALE_EPOCH');
      }
      assert.equal((await a.status()).epoch, 5);
    });

    test('Status carries the epoch runs and the rebuild flag; Begin/FinishRebuild set and clear it', async () => {
      await data.write(5, 1, 0, blockPayload(0, 1));
      await data.write(5, 2, B, blockPayload(1, 2));
      await a.setEpoch(6);
      await data.write(6, 3, 0, blockPayload(0, 3));
      let st = await b.status();
      assert.deepEqual(st.runs, [
        { epoch: 5, from: 1, to: 2 },
        { epoch: 6, from: 3, to: 3 },
      ]);
      assert.equal(st.rebuildBase, null);
      await assert.rejects(a.beginRebuild(2, 5), { code: 'ERR_STALE_EPOCH' });
      st = await a.beginRebuild(0, 6);
      assert.equal(st.rebuildBase, 0, 'a base of 0 is a set flag, not an absent one');
      st = await a.finishRebuild(2, 6, [{ epoch: 4, from: 1, to: 2 }]);
      assert.equal(st.rebuildBase, null);
      assert.deepEqual(st.runs, [
        { epoch: 4, from: 1, to: 2 },
        { epoch: 6, from: 3, to: 3 },
      ]);
      await assert.rejects(a.finishRebuild(2, 6, [{ epoch: 4, from: 0, to: 2 }]), { code: 'ERR_INVALID_ARGUMENT' });
    });

    test('Reset empties a reverted replica, keeps the epoch, and is fenced', async () => {
      await a.createSnapshot('snap', 6, 3);
      await data.write(6, 4, 0, blockPayload(0, 4));
      await a.revertSnapshot('snap', 6, 5);
      await assert.rejects(a.truncateAfter(2, 6), { code: 'ERR_NOT_FOUND' });
      await assert.rejects(a.reset(5), { code: 'ERR_STALE_EPOCH' });
      assert.equal((await a.status()).lastSeq, 5, 'a refused reset changes nothing');
      const st = await a.reset(6);
      assert.deepEqual([st.lastSeq, st.epoch, st.size, st.rebuildBase, st.runs.length], [0, 6, 4 * MiB, null, 0]);
      assert.deepEqual(await a.listSnapshots(), []);
      assert.equal(identifyBlock(await data.read(6, 0, B)), 'zero');
      await data.write(6, 1, 0, blockPayload(0, 1));
      assert.deepEqual(identifyBlock(await data.read(6, 0, B)), { block: 0, version: 1 });
    });
  });
}
