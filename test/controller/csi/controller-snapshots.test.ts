import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { grpcStatus } from '../../node/support/csi-client';
import { MiB, mountCap, startControllerPlugin, type ControllerPlugin, type CsiSnapshot, type CsiVolume } from './controller-harness';

let plugin: ControllerPlugin;

before(async () => {
  plugin = await startControllerPlugin();
});

after(async () => {
  await plugin?.close();
});

const createVolume = (request: object): Promise<{ volume: CsiVolume }> => plugin.client.call('Controller', 'CreateVolume', request);
const createSnapshot = (request: object): Promise<{ snapshot: CsiSnapshot }> => plugin.client.call('Controller', 'CreateSnapshot', request);

test('CreateSnapshot: ready, sized, timestamped, idempotent by name; ALREADY_EXISTS for another source', async () => {
  const a = (await createVolume({ name: 'snap-src-a', volume_capabilities: [mountCap], capacity_range: { required_bytes: 32 * MiB } })).volume;
  const b = (await createVolume({ name: 'snap-src-b', volume_capabilities: [mountCap], capacity_range: { required_bytes: 16 * MiB } })).volume;
  const before = Math.floor(Date.now() / 1000);
  const first = await createSnapshot({ name: 'nightly', source_volume_id: a.volume_id });
  assert.equal(first.snapshot.source_volume_id, a.volume_id);
  assert.equal(first.snapshot.size_bytes, 32 * MiB);
  assert.equal(first.snapshot.ready_to_use, true);
  assert.ok(first.snapshot.creation_time.seconds >= before && first.snapshot.creation_time.seconds <= before + 5);
  assert.ok(first.snapshot.creation_time.nanos >= 0 && first.snapshot.creation_time.nanos < 1e9);
  assert.deepEqual((await createSnapshot({ name: 'nightly', source_volume_id: a.volume_id })).snapshot, first.snapshot);
  await assert.rejects(createSnapshot({ name: 'nightly', source_volume_id: b.volume_id }), grpcStatus(status.ALREADY_EXISTS));
  await assert.rejects(createSnapshot({ name: 'orphan', source_volume_id: 'vol-nope' }), grpcStatus(status.NOT_FOUND));
  await assert.rejects(createSnapshot({ name: 'x' }), grpcStatus(status.INVALID_ARGUMENT));
  await assert.rejects(createSnapshot({ source_volume_id: a.volume_id }), grpcStatus(status.INVALID_ARGUMENT));
  await assert.rejects(createSnapshot({ name: 'x', source_volume_id: a.volume_id, parameters: { retention: '7d' } }), grpcStatus(status.INVALID_ARGUMENT));
  await plugin.client.call('Controller', 'DeleteSnapshot', { snapshot_id: first.snapshot.snapshot_id });
  for (const v of [a, b]) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: v.volume_id });
});

test('clones from a snapshot and from a volume carry the source content and at least its size', async () => {
  const source = (await createVolume({ name: 'clone-src', volume_capabilities: [mountCap], capacity_range: { required_bytes: 24 * MiB } })).volume;
  plugin.orchestrator.write(source.volume_id, 'generation-1');
  const snap = (await createSnapshot({ name: 'clone-snap', source_volume_id: source.volume_id })).snapshot;
  plugin.orchestrator.write(source.volume_id, 'generation-2');

  const fromSnap = (
    await createVolume({ name: 'from-snap', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB }, volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } } })
  ).volume;
  assert.equal(fromSnap.capacity_bytes, 24 * MiB, 'grown to the snapshot size');
  assert.equal(fromSnap.content_source?.snapshot?.snapshot_id, snap.snapshot_id);
  assert.equal(plugin.orchestrator.content(fromSnap.volume_id), 'generation-1', 'the snapshot content, not the later write');

  const fromVolume = (
    await createVolume({ name: 'from-vol', volume_capabilities: [mountCap], capacity_range: { required_bytes: 48 * MiB }, volume_content_source: { volume: { volume_id: source.volume_id } } })
  ).volume;
  assert.equal(fromVolume.capacity_bytes, 48 * MiB);
  assert.equal(fromVolume.content_source?.volume?.volume_id, source.volume_id);
  assert.equal(plugin.orchestrator.content(fromVolume.volume_id), 'generation-2');

  // A repeat with another source under the same name is incompatible.
  await assert.rejects(createVolume({ name: 'from-vol', volume_capabilities: [mountCap], capacity_range: { required_bytes: 48 * MiB } }), grpcStatus(status.ALREADY_EXISTS));
  await assert.rejects(
    createVolume({ name: 'too-small', volume_capabilities: [mountCap], capacity_range: { limit_bytes: 8 * MiB }, volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } } }),
    grpcStatus(status.OUT_OF_RANGE),
  );
  await plugin.client.call('Controller', 'DeleteSnapshot', { snapshot_id: snap.snapshot_id });
  for (const v of [fromSnap, fromVolume, source]) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: v.volume_id });
});

test('ListSnapshots filters by id and source, pages, and refuses a bad token with ABORTED; DeleteSnapshot is idempotent', async () => {
  const a = (await createVolume({ name: 'ls-a', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB } })).volume;
  const b = (await createVolume({ name: 'ls-b', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB } })).volume;
  const ofA: string[] = [];
  for (let i = 0; i < 3; i++) ofA.push((await createSnapshot({ name: `ls-a-${i}`, source_volume_id: a.volume_id })).snapshot.snapshot_id);
  const ofB = (await createSnapshot({ name: 'ls-b-0', source_volume_id: b.volume_id })).snapshot.snapshot_id;

  type Page = { entries: Array<{ snapshot: CsiSnapshot }>; next_token: string };
  const all = await plugin.client.call<Page>('Controller', 'ListSnapshots', {});
  assert.deepEqual(all.entries.map((e) => e.snapshot.snapshot_id), [...ofA, ofB]);
  const bySource = await plugin.client.call<Page>('Controller', 'ListSnapshots', { source_volume_id: a.volume_id, max_entries: 2 });
  assert.deepEqual(bySource.entries.map((e) => e.snapshot.snapshot_id), ofA.slice(0, 2));
  const rest = await plugin.client.call<Page>('Controller', 'ListSnapshots', { source_volume_id: a.volume_id, max_entries: 2, starting_token: bySource.next_token });
  assert.deepEqual(rest.entries.map((e) => e.snapshot.snapshot_id), ofA.slice(2));
  assert.equal(rest.next_token, '');
  const byId = await plugin.client.call<Page>('Controller', 'ListSnapshots', { snapshot_id: ofB });
  assert.deepEqual(byId.entries.map((e) => e.snapshot.source_volume_id), [b.volume_id]);
  assert.deepEqual((await plugin.client.call<Page>('Controller', 'ListSnapshots', { snapshot_id: 'snap-nope' })).entries, []);
  await assert.rejects(plugin.client.call('Controller', 'ListSnapshots', { starting_token: 'not-a-token' }), grpcStatus(status.ABORTED));

  for (const id of [...ofA, ofB]) {
    await plugin.client.call('Controller', 'DeleteSnapshot', { snapshot_id: id });
    await plugin.client.call('Controller', 'DeleteSnapshot', { snapshot_id: id });
  }
  await assert.rejects(plugin.client.call('Controller', 'DeleteSnapshot', {}), grpcStatus(status.INVALID_ARGUMENT));
  assert.deepEqual((await plugin.client.call<Page>('Controller', 'ListSnapshots', {})).entries, []);
  for (const v of [a, b]) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: v.volume_id });
});
