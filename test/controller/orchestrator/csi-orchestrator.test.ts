import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { errorCode } from '../../../src/common/errors';
import { silentLogger } from '../../../src/common/logger';
import { startStack, type Stack } from '../../../src/controller/manager/standalone-stack';
import { CsiLocalOrchestrator, temporarySnapshotName, volumeNameFor } from '../../../src/controller/orchestrator/csi-orchestrator';
import { LocalOrchestrator } from '../../../src/controller/orchestrator/local-orchestrator';
import { findOrphans } from '../../../src/controller/orchestrator/orphans';
import { replicaDir } from '../../../src/controller/orchestrator/volume-processes';
import { VolumeRecords } from '../../../src/controller/orchestrator/volume-records';
import { requireTools } from '../../support/host-tools';
import { TRIREME_ENTRY } from '../../support/trireme-cli';
import { qemuIo, until } from '../../cli/stack-helpers';

// The CSI Orchestrator over a real standalone stack: controller and replica
// child processes, LevelDB records, the management API between them.
const dataDir = mkdtempSync(join(tmpdir(), 'trireme-csi-orch-'));
// Below Linux's ephemeral port range (32768+), random so parallel files rarely meet.
const base = 20000 + Math.floor(Math.random() * 120) * 100;
const params = { replicaCount: 2, fsType: 'ext4' as const, chap: false };
let stack: Stack;
let csi: CsiLocalOrchestrator;

before(async () => {
  stack = await startStack({
    dataDir,
    logger: silentLogger(),
    trireme: { command: process.execPath, args: [TRIREME_ENTRY] },
    demo: false,
    ports: { portal: base, management: base + 20, metrics: base + 40, replica: base + 60 },
  });
  csi = new CsiLocalOrchestrator(stack.orchestrator);
});

after(async () => {
  await stack?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

test('volumes: create is idempotent by name, served on a portal, expandable, deletable', { timeout: 120_000 }, async () => {
  const name = 'pvc-0b5e2a52-7a43-4e0d-9a4a-3c1d2f6e8a11';
  const volume = await csi.createVolume(name, 20 * 1024 * 1024 + 1, params);
  assert.equal(volume.volumeId, name);
  assert.equal(volume.name, name);
  assert.equal(volume.sizeBytes, 20 * 1024 * 1024 + 4096, 'rounded up to the block size');
  assert.equal(volume.iqn, `iqn.2026-11.io.trireme:${name}`);
  assert.equal(volume.lun, 0);
  assert.match(volume.portal, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(volume.params, params);
  assert.equal(volume.health.state, 'healthy');
  assert.equal(volume.chap, undefined);

  const again = await csi.createVolume(name, 20 * 1024 * 1024 + 1, params);
  assert.equal(again.portal, volume.portal);
  assert.deepEqual((await csi.listVolumes()).map((v) => v.volumeId), [name]);
  assert.equal((await csi.findVolumeByName(name))?.volumeId, name);
  assert.equal(await csi.findVolumeByName('pvc-other'), undefined);
  assert.equal(await csi.getVolume('nope'), undefined);

  const grown = await csi.expandVolume(name, 64 * 1024 * 1024);
  assert.equal(grown.sizeBytes, 64 * 1024 * 1024);
  await assert.rejects(csi.expandVolume('nope', 64 * 1024 * 1024), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
  // Clone sources are checked before anything is made (the copy itself is tested in csi-clone-stack.test.ts).
  assert.equal(csi.supportsClones, true);
  await assert.rejects(csi.createVolume('pvc-clone', 1 << 20, params, { kind: 'volume', volumeId: name }), (err) => errorCode(err) === 'ERR_OUT_OF_RANGE');
  await assert.rejects(csi.createVolume('pvc-clone', 64 << 20, params, { kind: 'volume', volumeId: 'nope' }), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
  await assert.rejects(csi.createVolume('pvc-clone', 64 << 20, params, { kind: 'snapshot', snapshotId: `${name}@nope` }), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
  assert.equal(await csi.findVolumeByName('pvc-clone'), undefined, 'a refused clone leaves no volume');

  // Snapshots hold the volume: it cannot go while they exist.
  const snap = await csi.createSnapshot('snapshot-1', name);
  assert.equal(snap.snapshotId, `${name}@snapshot-1`);
  assert.equal(snap.sourceVolumeId, name);
  assert.equal(snap.readyToUse, true);
  assert.equal((await csi.createSnapshot('snapshot-1', name)).snapshotId, snap.snapshotId);
  assert.deepEqual((await csi.listSnapshots()).map((s) => s.snapshotId), [snap.snapshotId]);
  assert.equal((await csi.getSnapshot(snap.snapshotId))?.name, 'snapshot-1');
  await assert.rejects(csi.deleteVolume(name), (err) => errorCode(err) === 'ERR_VOLUME_HAS_SNAPSHOTS');
  await csi.deleteSnapshot(snap.snapshotId);
  await assert.rejects(csi.deleteSnapshot(snap.snapshotId), (err) => errorCode(err) === 'ERR_SNAPSHOT_NOT_FOUND');
  await assert.rejects(csi.createSnapshot('snapshot-2', 'nope'), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');

  await csi.deleteVolume(name);
  await assert.rejects(csi.deleteVolume(name), (err) => errorCode(err) === 'ERR_VOLUME_NOT_FOUND');
  assert.deepEqual(await csi.listVolumes(), []);
  assert.deepEqual(await findOrphans(dataDir), [], 'deleting a volume stops its processes');
});

test('CHAP volumes get credentials; names that are not volume names are hashed', { timeout: 120_000 }, async () => {
  const name = 'My Volume/With Odd Name';
  const volume = await csi.createVolume(name, 8 * 1024 * 1024, { ...params, replicaCount: 1, chap: true });
  assert.equal(volume.volumeId, volumeNameFor(name));
  assert.match(volume.volumeId, /^csi-[0-9a-f]{32}$/);
  assert.equal(volume.name, name);
  assert.ok(volume.chap && volume.chap.user.length > 0 && volume.chap.secret.length >= 12);
  assert.equal((await csi.findVolumeByName(name))?.chap?.secret, volume.chap.secret);
  assert.ok((await csi.ready()) === true);
  const capacity = await csi.capacity(params);
  assert.ok(capacity.availableBytes > 0);
  await csi.deleteVolume(volume.volumeId);
});

test('a clone outlives SIGKILL of all its processes: after replay, writes made on it still beat the copied blocks', { timeout: 150_000 }, async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  const url = (v: { portal: string; iqn: string; lun: number }): string => `iscsi://${v.portal}/${v.iqn}/${v.lun}`;
  const source = await csi.createVolume('pvc-clone-source', 8 * 1024 * 1024, params);
  qemuIo(url(source), 'write -P 0x11 0 256k');
  const snap = await csi.createSnapshot('base', source.volumeId);
  const clone = await csi.createVolume('pvc-clone-target', 8 * 1024 * 1024, params, { kind: 'snapshot', snapshotId: snap.snapshotId });
  assert.deepEqual(clone.contentSource, { kind: 'snapshot', snapshotId: snap.snapshotId });
  qemuIo(url(clone), 'write -P 0x77 0 4k');

  // Every process of the clone dies at once; the supervisor brings them back
  // and the controller recovers from the replicas' logs alone.
  const children = [stack.orchestrator.child(clone.volumeId, 'controller'), stack.orchestrator.child(clone.volumeId, 0), stack.orchestrator.child(clone.volumeId, 1)];
  const pids = children.map((c) => c?.status().pid ?? 0);
  assert.ok(pids.every((pid) => pid > 0), 'all clone processes run');
  for (const pid of pids) process.kill(pid, 'SIGKILL');
  await until('the clone serves again', () => stack.orchestrator.describe(clone.volumeId), (d) => d.status?.state === 'healthy' && !pids.includes(d.controller.pid), 90_000, 500);

  qemuIo(url(clone), 'read -P 0x77 0 4k');
  qemuIo(url(clone), 'read -P 0x11 4k 252k');
  qemuIo(url(clone), 'read -P 0 256k 1M');

  await csi.deleteVolume(clone.volumeId);
  await csi.deleteSnapshot(snap.snapshotId);
  await csi.deleteVolume(source.volumeId);
});

test('a clone cut short by a restart is removed at start, never served half-copied; CreateVolume meanwhile is UNAVAILABLE', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-clone-cut-'));
  const records = await VolumeRecords.open(join(dir, 'records'));
  try {
    const cut = {
      name: 'pvc-cut', sizeBytes: 8 << 20, iqn: 'iqn.2026-11.io.trireme:pvc-cut', portalPort: 1, managementPort: 2, metricsPort: 3,
      replicas: [{ index: 0, port: 4 }], nextReplicaIndex: 1, createdAt: new Date().toISOString(), populating: true,
      csi: { name: 'pvc-cut', fsType: 'ext4' as const, source: { kind: 'volume' as const, volumeId: 'pvc-src' } },
    };
    await records.put(cut);
    mkdirSync(replicaDir(dir, cut.name, 0), { recursive: true });
    const local = new LocalOrchestrator({ dataDir: dir, host: '127.0.0.1', trireme: { command: process.execPath, args: [TRIREME_ENTRY] }, records, logger: silentLogger() });
    await assert.rejects(new CsiLocalOrchestrator(local).findVolumeByName('pvc-cut'), (err) => errorCode(err) === 'ERR_UNAVAILABLE');
    await local.start();
    assert.equal(await records.get('pvc-cut'), undefined);
    assert.equal(existsSync(replicaDir(dir, cut.name, 0)), false, 'the half-copied replica data is gone');
    await local.close();
  } finally {
    await records.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the snapshot a volume clone cuts on its source never outlives a crash: the retry reuses it, a restart deletes it', { timeout: 150_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-clone-snap-'));
  const ports = { portal: base + 80, management: base + 84, metrics: base + 88, replica: base + 92 };
  const start = () => startStack({ dataDir: dir, logger: silentLogger(), trireme: { command: process.execPath, args: [TRIREME_ENTRY] }, demo: false, ports });
  let local: Stack | undefined = await start();
  try {
    const csiLocal = new CsiLocalOrchestrator(local.orchestrator);
    const source = await csiLocal.createVolume('pvc-snap-src', 8 * 1024 * 1024, params);
    const names = async (s: Stack): Promise<string[]> => (await s.orchestrator.listSnapshots(source.volumeId)).map((x) => x.name);
    // A crash right after the snapshot was cut, before the clone's record: the retry finds it, copies from it, deletes it.
    await local.orchestrator.createSnapshot(source.volumeId, temporarySnapshotName('pvc-snap-a'));
    const a = await csiLocal.createVolume('pvc-snap-a', 8 * 1024 * 1024, params, { kind: 'volume', volumeId: source.volumeId });
    assert.deepEqual(a.contentSource, { kind: 'volume', volumeId: source.volumeId });
    assert.deepEqual(await names(local), []);
    // A crash mid-copy: the clone's record is still populating and names the snapshot. The next start removes both.
    const cut = temporarySnapshotName('pvc-snap-b');
    await local.orchestrator.createSnapshot(source.volumeId, cut);
    await local.close();
    local = undefined;
    const records = await VolumeRecords.open(join(dir, 'db'));
    await records.put({
      name: 'pvc-snap-b', sizeBytes: 8 << 20, iqn: 'iqn.2026-11.io.trireme:pvc-snap-b', portalPort: 1, managementPort: 2, metricsPort: 3,
      replicas: [{ index: 0, port: 4 }], nextReplicaIndex: 1, createdAt: new Date().toISOString(), populating: true,
      cloneSnapshot: { volume: source.volumeId, snapshot: cut },
      csi: { name: 'pvc-snap-b', fsType: 'ext4', source: { kind: 'volume', volumeId: source.volumeId } },
    });
    await records.close();
    local = await start();
    assert.equal(await local.orchestrator.getVolume('pvc-snap-b'), undefined);
    const restarted = local;
    await until('the cut clone\'s snapshot is deleted', () => names(restarted).catch(() => [cut]), (n) => !n.includes(cut), 60_000, 250);
    assert.ok((await local.orchestrator.listVolumes()).some((v) => v.name === 'pvc-snap-a'), 'the finished clone stays');
  } finally {
    await local?.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
