import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { errorCode } from '../../../src/common/errors';
import { allocatePort, isPortFree } from '../../../src/controller/orchestrator/ports';
import { VolumeRecords, validateVolumeName, type VolumeRecord } from '../../../src/controller/orchestrator/volume-records';

const dir = mkdtempSync(join(tmpdir(), 'trireme-records-'));
const servers: Server[] = [];
after(async () => {
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  rmSync(dir, { recursive: true, force: true });
});

const record = (name: string, port: number): VolumeRecord => ({
  name,
  sizeBytes: 1 << 30,
  iqn: `iqn.2026-11.io.trireme:${name}`,
  portalPort: port,
  managementPort: port + 1,
  metricsPort: port + 2,
  replicas: [
    { index: 0, port: port + 3 },
    { index: 1, port: port + 4 },
  ],
  nextReplicaIndex: 2,
  createdAt: new Date(0).toISOString(),
});

test('volume records survive closing and reopening LevelDB', async () => {
  const path = join(dir, 'db');
  const records = await VolumeRecords.open(path);
  await records.put(record('alpha', 4000));
  await records.put(record('beta', 5000));
  await records.putMeta('demo-created', 'yes');
  await records.delete('beta');
  await records.close();

  const reopened = await VolumeRecords.open(path);
  assert.deepEqual(await reopened.list(), [record('alpha', 4000)]);
  assert.equal(await reopened.get('beta'), undefined);
  assert.equal(await reopened.getMeta('demo-created'), 'yes');
  await assert.rejects(reopened.require('beta'), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');

  // LevelDB's lock keeps a second manager off the same directory.
  await assert.rejects(VolumeRecords.open(path), (err) => errorCode(err) === 'ERR_DATABASE' && /another `trireme up`/.test((err as Error).message));
  await reopened.close();
});

test('volume names are checked before they become paths and IQNs', () => {
  for (const good of ['demo', 'pvc-0123abcd', 'a', 'v1.data']) assert.equal(validateVolumeName(good), good);
  for (const bad of ['', 'Demo', '../etc', 'a/b', '-x', 'x-', 'a'.repeat(64), 'with space']) {
    assert.throws(() => validateVolumeName(bad), (err) => errorCode(err) === 'ERR_INVALID_ARGUMENT', bad);
  }
});

test('allocatePort skips ports held by records and by other programs', async () => {
  const busy = createServer();
  servers.push(busy);
  await new Promise<void>((r) => busy.listen(0, '127.0.0.1', r));
  const busyPort = (busy.address() as { port: number }).port;
  assert.equal(await isPortFree('127.0.0.1', busyPort), false);
  // Start the search at the busy port: it and the next (recorded) one are skipped.
  const port = await allocatePort('127.0.0.1', busyPort, new Set([busyPort + 1]));
  assert.ok(port >= busyPort + 2, `got ${port}`);
  assert.equal(await isPortFree('127.0.0.1', port), true);
  await assert.rejects(allocatePort('127.0.0.1', busyPort, new Set(), 1), (err) => errorCode(err) === 'ERR_NO_PORT');
});
