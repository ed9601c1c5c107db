import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../../src/replica/client/control-client';
import { MemoryReplicaStore } from '../../../src/replica/memory-store';
import type { ImageExtent, LogRecord } from '../../../src/replica/store-types';
import { DISK, MEMORY, blockPayload, identifyBlock, startHarness, type Harness, type StoreKind } from '../support/replica-harness';

const MiB = 1024 * 1024;

async function collect<T>(items: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const item of items) out.push(item);
  return out;
}

async function readAll(client: ReplicaClient, epoch: number, size: number, snapshot?: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let off = 0; off < size; off += MiB) parts.push(await client.read(epoch, off, MiB, snapshot));
  return Buffer.concat(parts);
}

for (const kind of [MEMORY, DISK]) {
  describe(`gRPC control (${kind.name})`, { timeout: 60_000 }, () => {
    const size = 8 * MiB;
    let source: Harness;
    let target: Harness;
    let data: ReplicaClient;
    let control: ReplicaControlClient;
    let targetControl: ReplicaControlClient;

    before(async () => {
      source = await startHarness(kind, { size, volumeId: 'vol-c', grpc: true });
      target = await startHarness(kind, { size, volumeId: 'vol-c' });
      data = await ReplicaClient.connect({ host: '127.0.0.1', port: source.server.dataPort });
      // One client on the dedicated gRPC port, the other through the data port's hand-over.
      control = new ReplicaControlClient(`127.0.0.1:${source.server.grpcPort}`);
      targetControl = new ReplicaControlClient(`127.0.0.1:${target.server.dataPort}`);
    });
    after(async () => {
      data.close();
      control.close();
      targetControl.close();
      await source.close();
      await target.close();
    });

    test('Status and SetEpoch; a lower epoch is refused with its stable code', { timeout: 60_000 }, async () => {
      const status = await control.status();
      assert.equal(status.volumeId, 'vol-c');
      assert.equal(status.state, 'ok');
      assert.equal(status.size, size);
      assert.equal((await control.setEpoch(3)).epoch, 3);
      await assert.rejects(control.setEpoch(2), { code: 'ERR_STALE_EPOCH', grpcCode: 9 /* FAILED_PRECONDITION */ });
      assert.equal((await targetControl.setEpoch(3)).epoch, 3, 'through the data port');
    });

    test('TruncateAfter cuts a divergent tail', { timeout: 60_000 }, async () => {
      await data.write(3, 1, 0, blockPayload(0, 1));
      await data.write(3, 2, 0, blockPayload(0, 2));
      const after = await control.truncateAfter(1, 3);
      assert.equal(after.lastSeq, 1);
      assert.deepEqual(identifyBlock(await data.read(3, 0, 4096)), { block: 0, version: 1 }, 'the tail is gone');
      await assert.rejects(control.truncateAfter(0, 2), { code: 'ERR_STALE_EPOCH' }, 'fenced');
    });

    test('snapshots: create, list, read, revert, delete, with mapped errors', { timeout: 60_000 }, async () => {
      await data.write(3, 11, 0, blockPayload(0, 1, 4));
      await data.write(3, 12, 4 * 4096, blockPayload(4, 2, 4));
      const snap = await control.createSnapshot('s1', 3, 13);
      assert.equal(snap.name, 's1');
      assert.equal(snap.seq, 13);
      await assert.rejects(control.createSnapshot('s1', 3, 14), { code: 'ERR_ALREADY_EXISTS', grpcCode: 6 });
      await data.write(3, 15, 0, blockPayload(0, 5, 4));
      assert.deepEqual(identifyBlock(await data.read(3, 0, 4096, 's1')), { block: 0, version: 1 }, 'the snapshot keeps the old block');
      assert.deepEqual(identifyBlock(await data.read(3, 0, 4096)), { block: 0, version: 5 });
      assert.deepEqual((await control.listSnapshots()).map((s) => s.name), ['s1']);
      await control.revertSnapshot('s1', 3, 16);
      assert.deepEqual(identifyBlock(await data.read(3, 0, 4096)), { block: 0, version: 1 }, 'head reverted');
      await assert.rejects(control.deleteSnapshot('nope', 3), { code: 'ERR_NOT_FOUND', grpcCode: 5 });
      await assert.rejects(control.deleteSnapshot('s1', 2), { code: 'ERR_STALE_EPOCH' }, 'fenced');
      await control.deleteSnapshot('s1', 3);
      assert.deepEqual(await control.listSnapshots(), []);
    });

    test('ExportRecords streams a delta the target applies; ExportImage a full copy', { timeout: 60_000 }, async () => {
      for (let i = 0; i < 64; i++) await data.write(3, 100 + i, (i % 32) * 4096 * 8, blockPayload((i % 32) * 8, 100 + i, 8));
      await data.unmap(3, 200, 4096 * 8, 4096 * 8);
      await data.flush(3);
      const records = await collect(control.exportRecords(99));
      assert.ok(records.length >= 65, `${records.length} records after seq 99`);
      const seqs = records.map((r) => r.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
      assert.ok(records.every((r) => r.seq > 99));

      // Full copy first (the target has nothing), then the delta over it: higher seq wins.
      const image = await collect(control.exportImage());
      const applied = await targetControl.applyExtents(3, image);
      assert.equal(applied.count, image.length);
      const head = await readAll(data, 3, size);
      const tdata = await ReplicaClient.connect({ host: '127.0.0.1', port: target.server.dataPort });
      try {
        assert.ok((await readAll(tdata, 3, size)).equals(head), 'image copy equals the source');
        const delta = await targetControl.applyRecords(3, records);
        assert.equal(delta.count, records.length);
        assert.ok((await readAll(tdata, 3, size)).equals(head), 'replaying the delta over it changes nothing');
      } finally {
        tdata.close();
      }
    });

    test('a slow consumer of a large export gets every byte (flow control, not buffering)', { timeout: 60_000 }, async () => {
      const big = blockPayload(0, 9, 256);
      for (let i = 0; i < 8; i++) await data.write(3, 1000 + i, i * MiB, big);
      let bytes = 0;
      for await (const r of control.exportRecords(999)) {
        if (r.type === 'write') bytes += r.data.length;
        await sleep(5);
      }
      assert.equal(bytes, 8 * MiB);
    });

    test('apply streams are fenced and verify their checksums', { timeout: 60_000 }, async () => {
      const rec: LogRecord = { type: 'write', epoch: 3, seq: 5000, offset: 0, data: blockPayload(0, 5000) };
      await assert.rejects(targetControl.applyRecords(2, [rec]), { code: 'ERR_STALE_EPOCH' });
      const ext: ImageExtent = { type: 'zero', offset: size, length: 4096, seq: 5001 };
      await assert.rejects(targetControl.applyExtents(3, [ext]), { code: 'ERR_OUT_OF_RANGE', grpcCode: 11 });
    });

    test('Resize grows the volume; TruncateAfter and Compact answer', { timeout: 60_000 }, async () => {
      assert.equal((await control.resize(size * 2, 3)).size, size * 2);
      assert.equal((await data.ping()).epoch, 3);
      const compacted = await control.compact();
      assert.equal(typeof compacted.bytesFreed, 'number');
      // Both stores refuse to truncate across the revert done above: a full rebuild is the way back.
      await assert.rejects(control.truncateAfter(1, 3), { code: 'ERR_NOT_FOUND' });
    });
  });
}

for (const kind of [MEMORY, DISK]) {
  test(`a delta rebuild interleaved with live writes ends identical to the source (${kind.name})`, { timeout: 60_000 }, async () => {
    const size = 2 * MiB;
    const source = await startHarness(kind, { size });
    const target = await startHarness(kind, { size });
    const src = await ReplicaClient.connect({ host: '127.0.0.1', port: source.server.dataPort });
    const dst = await ReplicaClient.connect({ host: '127.0.0.1', port: target.server.dataPort });
    const control = new ReplicaControlClient(`127.0.0.1:${source.server.dataPort}`);
    const targetControl = new ReplicaControlClient(`127.0.0.1:${target.server.dataPort}`);
    try {
      // History the target missed: 200 writes over 64 blocks.
      for (let seq = 1; seq <= 200; seq++) await src.write(0, seq, (seq % 64) * 4096, blockPayload(seq % 64, seq));
      // The target rejoins (write-only): live writes reach both while the delta streams in.
      const live = (async () => {
        for (let seq = 201; seq <= 260; seq++) {
          const off = ((seq * 7) % 64) * 4096;
          await Promise.all([src.write(0, seq, off, blockPayload(off / 4096, seq)), dst.write(0, seq, off, blockPayload(off / 4096, seq))]);
        }
      })();
      const applied = targetControl.applyRecords(0, (async function* () {
        for await (const r of control.exportRecords(0)) {
          if (r.seq > 200) continue; // the live path carries those
          // The second half lands after every live write: old records must lose to newer blocks.
          if (r.seq === 100) await live;
          yield r;
        }
      })());
      await Promise.all([live, applied]);
      assert.ok((await readAll(dst, 0, size)).equals(await readAll(src, 0, size)), 'per block the higher seq won on both paths');
    } finally {
      src.close();
      dst.close();
      control.close();
      targetControl.close();
      await source.close();
      await target.close();
    }
  });
}

describe('metrics, health and the error state', { timeout: 60_000 }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness(MEMORY, { http: true });
  });
  after(async () => h.close());

  test('/metrics exposes the data-path metrics; /healthz follows the store state', { timeout: 60_000 }, async () => {
    const client = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
    try {
      await client.write(0, 1, 0, blockPayload(0, 1));
      await client.read(0, 0, 4096);
      const text = await (await fetch(`http://127.0.0.1:${h.server.httpPort}/metrics`)).text();
      assert.match(text, /trireme_replica_ops_total\{op="write",status="ok"\} 1/);
      assert.match(text, /trireme_replica_io_bytes_total\{op="read"\} 4096/);
      assert.match(text, /trireme_replica_op_seconds_bucket\{le="[^"]+",op="write"\}/);
      assert.match(text, /trireme_replica_connections 1/);
      assert.match(text, /trireme_replica_last_seq 1/);
      assert.equal((await fetch(`http://127.0.0.1:${h.server.httpPort}/healthz`)).status, 200);
      (h.store as MemoryReplicaStore).markCorrupt('test: bad record in the middle of the log');
      const health = await fetch(`http://127.0.0.1:${h.server.httpPort}/healthz`);
      assert.equal(health.status, 503);
      assert.match(await health.text(), /bad record/);
      await assert.rejects(client.ping(), { code: 'ERR_CORRUPT' });
      await assert.rejects(client.read(0, 0, 4096), { code: 'ERR_CORRUPT' });
    } finally {
      client.close();
    }
  });
});

test('a delta older than the compacted log is NOT_FOUND (memory store)', { timeout: 60_000 }, async () => {
  const h = await startHarness(MEMORY, {});
  const control = new ReplicaControlClient(`127.0.0.1:${h.server.dataPort}`);
  const data = await ReplicaClient.connect({ host: '127.0.0.1', port: h.server.dataPort });
  try {
    for (let i = 1; i <= 4; i++) await data.write(0, i, 0, blockPayload(0, i));
    await control.compact();
    await assert.rejects(collect(control.exportRecords(1)), { code: 'ERR_NOT_FOUND', grpcCode: 5 });
    assert.deepEqual(await collect(control.exportRecords(4)), []);
  } finally {
    data.close();
    control.close();
    await h.close();
  }
});

test('an export stream pulls from the store only as fast as the client reads', { timeout: 60_000 }, async () => {
  const RECORDS = 600;
  const RECORD = 64 * 1024;
  let pulled = 0;
  // A memory store that counts what the export pulls and keeps its whole log.
  const counting: StoreKind = {
    name: 'counting memory store',
    async open() {
      const store = new MemoryReplicaStore({ size: 64 * MiB, maxLogBytes: 1024 * MiB });
      const exportRecords = store.exportRecords.bind(store);
      store.exportRecords = async function* (afterSeq: number) {
        for await (const r of exportRecords(afterSeq)) {
          pulled++;
          yield r;
        }
      };
      return { store, cleanup: () => undefined };
    },
  };
  const h = await startHarness(counting, { size: 64 * MiB });
  const control = new ReplicaControlClient(`127.0.0.1:${h.server.dataPort}`);
  try {
    const data = Buffer.alloc(RECORD, 3);
    for (let i = 0; i < RECORDS; i++) await h.store.write(0, i + 1, (i % 1000) * RECORD, data);
    const iterator = control.exportRecords(0)[Symbol.asyncIterator]();
    assert.equal((await iterator.next()).value?.seq, 1);
    await sleep(500);
    assert.ok(pulled < RECORDS / 2, `a stalled reader held the source back: ${pulled} of ${RECORDS} records pulled`);
    let count = 1;
    while (!(await iterator.next()).done) count++;
    assert.equal(count, RECORDS);
    assert.equal(pulled, RECORDS);
  } finally {
    control.close();
    await h.close();
  }
});
