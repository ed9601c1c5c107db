import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { errorCode } from '../../../src/common/errors';
import { silentLogger } from '../../../src/common/logger';
import { createRegistry } from '../../../src/common/metrics';
import { EngineHost } from '../../../src/controller/management/engine-host';
import { ManagementClient } from '../../../src/controller/management/management-client';
import { ManagementServer } from '../../../src/controller/management/management-server';
import { InProcessLink } from './in-process-link';

const SIZE = 16 * 1024 * 1024;
const links = new Map<string, InProcessLink>();
let sessions = 0;
let host: EngineHost;
let server: ManagementServer;
let client: ManagementClient;

before(async () => {
  host = await EngineHost.open({
    volume: 'vol-a',
    addresses: ['10.0.0.1:9700', '10.0.0.2:9700', '10.0.0.3:9700'],
    connect: (address) => {
      const link = links.get(address) ?? new InProcessLink(address, SIZE);
      links.set(address, link);
      return link;
    },
    logger: silentLogger(),
    registry: createRegistry({ defaultMetrics: false }),
    tuning: { opTimeoutMs: 1000, probeIntervalMs: 100, openTimeoutMs: 5000 },
    iqn: 'iqn.2026-11.io.trireme:vol-a',
    portal: '127.0.0.1:3260',
    sessions: () => sessions,
  });
  server = new ManagementServer(host, silentLogger());
  const bound = await server.listen('127.0.0.1', 0);
  client = new ManagementClient(`127.0.0.1:${bound.port}`, 5000);
});

after(async () => {
  client.close();
  await server.close();
  await host.close();
});

async function until<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

test('status reports the volume, its epoch and seq and every replica RW', async () => {
  await host.write(0, Buffer.alloc(8192, 0x5a));
  const status = await client.status();
  assert.equal(status.volume, 'vol-a');
  assert.equal(status.sizeBytes, SIZE);
  assert.equal(status.state, 'healthy');
  assert.equal(status.iqn, 'iqn.2026-11.io.trireme:vol-a');
  assert.equal(status.portal, '127.0.0.1:3260');
  assert.ok(status.epoch >= 1);
  assert.ok(status.seq >= 1);
  assert.deepEqual(
    status.replicas.map((r) => [r.address, r.mode, r.rebuild]),
    [
      ['10.0.0.1:9700', 'RW', null],
      ['10.0.0.2:9700', 'RW', null],
      ['10.0.0.3:9700', 'RW', null],
    ],
  );
});

test('a write larger than one replica frame reaches every replica whole', async () => {
  const big = Buffer.alloc(12 * 1024 * 1024);
  for (let i = 0; i < big.length; i += 4096) big.fill(i / 4096 % 251, i, i + 4096);
  await host.write(2 * 1024 * 1024, big);
  assert.ok((await host.read(2 * 1024 * 1024, big.length)).equals(big));
  for (const link of links.values()) assert.ok(link.replica.read(2 * 1024 * 1024, big.length).equals(big));
  await host.write(2 * 1024 * 1024, Buffer.alloc(big.length));
});

test('expand grows the volume and refuses to shrink it', async () => {
  const grown = await client.expand(SIZE * 2);
  assert.equal(grown.sizeBytes, SIZE * 2);
  assert.equal(host.size(), SIZE * 2);
  for (const link of links.values()) assert.equal(link.replica.size, SIZE * 2);
  await assert.rejects(client.expand(SIZE), (err) => errorCode(err) === 'ERR_OUT_OF_RANGE');
  await assert.rejects(client.expand(0), (err) => errorCode(err) === 'ERR_INVALID_ARGUMENT');
  assert.equal((await client.status()).sizeBytes, SIZE * 2);
});

test('snapshots: create, list, revert while detached, delete, and the error codes', async () => {
  await host.write(4096 * 10, Buffer.alloc(4096, 0x11));
  const snap = await client.createSnapshot('before');
  assert.equal(snap.name, 'before');
  assert.equal(snap.seq, (await client.status()).seq);
  await host.write(4096 * 10, Buffer.alloc(4096, 0x22));
  assert.deepEqual((await client.listSnapshots()).map((s) => s.name), ['before']);
  await assert.rejects(client.createSnapshot('before'), (err) => errorCode(err) === 'ERR_ALREADY_EXISTS');
  await assert.rejects(client.createSnapshot('bad name!'), (err) => errorCode(err) === 'ERR_INVALID_ARGUMENT');

  sessions = 1;
  await assert.rejects(client.revertSnapshot('before'), (err) => errorCode(err) === 'ERR_BUSY');
  sessions = 0;
  await client.revertSnapshot('before');
  assert.equal((await host.read(4096 * 10, 4096))[0], 0x11);
  for (const link of links.values()) assert.equal(link.replica.read(4096 * 10, 4096)[0], 0x11);

  await assert.rejects(client.revertSnapshot('nope'), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
  await assert.rejects(client.deleteSnapshot('nope'), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
  await client.deleteSnapshot('before');
  assert.deepEqual(await client.listSnapshots(), []);
});

test('a replica that fails shows ERR with its error, then rebuilds back to RW', async () => {
  const victim = links.get('10.0.0.2:9700') as InProcessLink;
  victim.down = true;
  await host.write(4096 * 20, Buffer.alloc(4096, 0x33));
  const degraded = await until('ERR', () => client.status(), (s) => s.replicas[1].mode === 'ERR');
  assert.notEqual(degraded.replicas[1].error, '');
  assert.equal(degraded.state, 'degraded');
  victim.down = false;
  const back = await until('RW again', () => client.status(), (s) => s.replicas.every((r) => r.mode === 'RW'));
  assert.equal(back.state, 'healthy');
  assert.equal(victim.replica.read(4096 * 20, 4096)[0], 0x33);
});

test('add and remove a replica swap the engine without losing data', async () => {
  await host.write(4096 * 30, Buffer.alloc(4096, 0x44));
  const added = await client.addReplica('10.0.0.4:9700');
  assert.equal(added.replicas.length, 4);
  assert.ok(added.replicas.some((r) => r.address === '10.0.0.4:9700'));
  await until('newcomer RW', () => client.status(), (s) => s.replicas.every((r) => r.mode === 'RW'));
  assert.equal((links.get('10.0.0.4:9700') as InProcessLink).replica.read(4096 * 30, 4096)[0], 0x44);
  await assert.rejects(client.addReplica('10.0.0.4:9700'), (err) => errorCode(err) === 'ERR_ALREADY_EXISTS');
  await assert.rejects(client.addReplica('not an address'), (err) => errorCode(err) === 'ERR_INVALID_ARGUMENT');

  const removed = await client.removeReplica('10.0.0.1:9700');
  assert.deepEqual(removed.replicas.map((r) => r.address), ['10.0.0.2:9700', '10.0.0.3:9700', '10.0.0.4:9700']);
  await assert.rejects(client.removeReplica('10.0.0.1:9700'), (err) => errorCode(err) === 'ERR_REPLICA_NOT_FOUND');
  // Writes go on over the new set; the old replica gets none of them.
  await host.write(4096 * 31, Buffer.alloc(4096, 0x55));
  assert.equal((await host.read(4096 * 31, 4096))[0], 0x55);
  assert.equal((links.get('10.0.0.1:9700') as InProcessLink).replica.read(4096 * 31, 4096)[0], 0);
});

test('a controller that is not there is a clear unavailable error', async () => {
  const nobody = new ManagementClient('127.0.0.1:1', 1000);
  await assert.rejects(nobody.status(), (err) => errorCode(err) === 'ERR_UNAVAILABLE' && /not reachable/.test((err as Error).message));
  nobody.close();
});
