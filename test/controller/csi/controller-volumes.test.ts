import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { grpcStatus } from '../../node/support/csi-client';
import { blockCap, GiB, MiB, mountCap, startControllerPlugin, type ControllerPlugin, type CsiVolume } from './controller-harness';

let plugin: ControllerPlugin;

before(async () => {
  plugin = await startControllerPlugin();
});

after(async () => {
  await plugin?.close();
});

const create = (request: object): Promise<{ volume: CsiVolume }> => plugin.client.call('Controller', 'CreateVolume', request);

test('identity of a controller plugin: controller service advertised, Probe follows the orchestrator', async () => {
  const caps = await plugin.client.call<{ capabilities: Array<{ service?: { type: string }; volume_expansion?: { type: string } }> }>('Identity', 'GetPluginCapabilities');
  assert.deepEqual(
    caps.capabilities.map((c) => c.service?.type ?? `expansion:${c.volume_expansion?.type}`),
    ['CONTROLLER_SERVICE', 'VOLUME_ACCESSIBILITY_CONSTRAINTS', 'expansion:ONLINE'],
  );
  assert.equal((await plugin.client.call<{ ready: { value: boolean } }>('Identity', 'Probe')).ready.value, true);
  plugin.orchestrator.isReady = false;
  try {
    assert.equal((await plugin.client.call<{ ready: { value: boolean } }>('Identity', 'Probe')).ready.value, false);
  } finally {
    plugin.orchestrator.isReady = true;
  }
});

test('ControllerGetCapabilities lists what is implemented; ControllerPublishVolume is UNIMPLEMENTED', async () => {
  const caps = await plugin.client.call<{ capabilities: Array<{ rpc: { type: string } }> }>('Controller', 'ControllerGetCapabilities');
  assert.deepEqual(caps.capabilities.map((c) => c.rpc.type).sort(), [
    'CLONE_VOLUME',
    'CREATE_DELETE_SNAPSHOT',
    'CREATE_DELETE_VOLUME',
    'EXPAND_VOLUME',
    'GET_CAPACITY',
    'GET_VOLUME',
    'LIST_SNAPSHOTS',
    'LIST_VOLUMES',
    'SINGLE_NODE_MULTI_WRITER',
    'VOLUME_CONDITION',
  ]);
  await assert.rejects(plugin.client.call('Controller', 'ControllerPublishVolume', { volume_id: 'v', node_id: 'n', volume_capability: mountCap }), grpcStatus(status.UNIMPLEMENTED));
});

test('CreateVolume: sizes in whole MiB, parameters in the volume context, idempotent by name, ALREADY_EXISTS on an incompatible repeat', async () => {
  const request = { name: 'pvc-one', capacity_range: { required_bytes: 100 * MiB + 1 }, volume_capabilities: [mountCap], parameters: { replicaCount: '2', fsType: 'xfs' } };
  const first = await create(request);
  assert.equal(first.volume.capacity_bytes, 101 * MiB);
  assert.deepEqual(first.volume.volume_context, { portal: '127.0.0.1:3260', iqn: `iqn.2026-01.io.trireme:${first.volume.volume_id}`, lun: '0', fsType: 'xfs', replicaCount: '2' });
  const again = await create(request);
  assert.deepEqual(again.volume, first.volume, 'the same call returns the same volume');
  // A repeat whose range the existing size still satisfies is compatible too.
  assert.equal((await create({ ...request, capacity_range: { required_bytes: 50 * MiB, limit_bytes: 200 * MiB } })).volume.volume_id, first.volume.volume_id);
  await assert.rejects(create({ ...request, capacity_range: { required_bytes: 200 * MiB } }), grpcStatus(status.ALREADY_EXISTS));
  await assert.rejects(create({ ...request, parameters: { replicaCount: '3', fsType: 'xfs' } }), grpcStatus(status.ALREADY_EXISTS));
  assert.equal((await plugin.client.call<{ entries: unknown[] }>('Controller', 'ListVolumes')).entries.length, 1);
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: first.volume.volume_id });
});

test('CreateVolume errors: INVALID_ARGUMENT, OUT_OF_RANGE, RESOURCE_EXHAUSTED, NOT_FOUND for a missing source', async () => {
  await assert.rejects(create({ volume_capabilities: [mountCap] }), (err: Error & { code: number }) => err.code === status.INVALID_ARGUMENT && /name is required/.test(err.message));
  await assert.rejects(create({ name: 'x' }), (err: Error & { code: number }) => err.code === status.INVALID_ARGUMENT && /volume_capabilities is required/.test(err.message));
  await assert.rejects(create({ name: 'x', volume_capabilities: [{ mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }] }), grpcStatus(status.INVALID_ARGUMENT));
  await assert.rejects(create({ name: 'x', volume_capabilities: [{ mount: { fs_type: 'ntfs' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }] }), grpcStatus(status.INVALID_ARGUMENT));
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], parameters: { replicaCount: '9' } }), grpcStatus(status.INVALID_ARGUMENT));
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB + 1, limit_bytes: MiB + 2 } }), grpcStatus(status.OUT_OF_RANGE));
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], capacity_range: { required_bytes: 17 * GiB } }), grpcStatus(status.OUT_OF_RANGE), 'above the largest volume');
  // 100 GiB pool: five 10 GiB volumes x 2 replicas fill it.
  const big = [];
  for (let i = 0; i < 5; i++) big.push(await create({ name: `fill-${i}`, volume_capabilities: [blockCap], capacity_range: { required_bytes: 10 * GiB }, parameters: { replicaCount: '2' } }));
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], capacity_range: { required_bytes: GiB } }), grpcStatus(status.RESOURCE_EXHAUSTED));
  const capacity = await plugin.client.call<{ available_capacity: number; maximum_volume_size: { value: number } }>('Controller', 'GetCapacity', { parameters: { replicaCount: '1' } });
  assert.equal(capacity.available_capacity, 0);
  for (const v of big) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: v.volume.volume_id });
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], volume_content_source: { snapshot: { snapshot_id: 'snap-nope' } } }), grpcStatus(status.NOT_FOUND));
  await assert.rejects(create({ name: 'x', volume_capabilities: [mountCap], volume_content_source: { volume: { volume_id: 'vol-nope' } } }), grpcStatus(status.NOT_FOUND));
  assert.equal((await plugin.client.call<{ entries: unknown[] }>('Controller', 'ListVolumes')).entries.length, 0, 'no failed create left a volume behind');
});

test('GetCapacity divides free space by the replica count and reports the size limits', async () => {
  const three = await plugin.client.call<{ available_capacity: number; maximum_volume_size: { value: number }; minimum_volume_size: { value: number } }>('Controller', 'GetCapacity', {
    volume_capabilities: [mountCap],
    parameters: { replicaCount: '3' },
  });
  const one = await plugin.client.call<{ available_capacity: number }>('Controller', 'GetCapacity', { parameters: { replicaCount: '1' } });
  assert.equal(one.available_capacity, 100 * GiB);
  assert.equal(three.available_capacity, Math.floor((100 * GiB) / 3 / MiB) * MiB);
  assert.equal(three.maximum_volume_size.value, 16 * GiB);
  assert.equal(three.minimum_volume_size.value, MiB);
  await assert.rejects(plugin.client.call('Controller', 'GetCapacity', { parameters: { fsType: 'zfs' } }), grpcStatus(status.INVALID_ARGUMENT));
});

test('DeleteVolume is idempotent; FAILED_PRECONDITION while snapshots depend on it', async () => {
  const { volume } = await create({ name: 'pvc-del', volume_capabilities: [mountCap], capacity_range: { required_bytes: 8 * MiB } });
  const snap = await plugin.client.call<{ snapshot: { snapshot_id: string } }>('Controller', 'CreateSnapshot', { name: 'snap-del', source_volume_id: volume.volume_id });
  await assert.rejects(plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id }), grpcStatus(status.FAILED_PRECONDITION));
  await plugin.client.call('Controller', 'DeleteSnapshot', { snapshot_id: snap.snapshot.snapshot_id });
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: 'vol-never-existed' });
  await assert.rejects(plugin.client.call('Controller', 'DeleteVolume', {}), grpcStatus(status.INVALID_ARGUMENT));
});

test('ValidateVolumeCapabilities confirms only what the volume supports; NOT_FOUND for an unknown volume', async () => {
  const { volume } = await create({ name: 'pvc-val', volume_capabilities: [mountCap], capacity_range: { required_bytes: 8 * MiB }, parameters: { replicaCount: '1' } });
  const ok = await plugin.client.call<{ confirmed: { volume_capabilities: unknown[] } | null; message: string }>('Controller', 'ValidateVolumeCapabilities', {
    volume_id: volume.volume_id,
    volume_capabilities: [mountCap, blockCap],
    volume_context: volume.volume_context,
    parameters: { replicaCount: '1' },
  });
  assert.equal(ok.confirmed?.volume_capabilities.length, 2);
  const multi = await plugin.client.call<{ confirmed: unknown; message: string }>('Controller', 'ValidateVolumeCapabilities', {
    volume_id: volume.volume_id,
    volume_capabilities: [{ mount: {}, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }],
  });
  assert.equal(multi.confirmed, null);
  assert.match(multi.message, /MULTI_NODE_MULTI_WRITER/);
  const wrongParams = await plugin.client.call<{ confirmed: unknown; message: string }>('Controller', 'ValidateVolumeCapabilities', {
    volume_id: volume.volume_id,
    volume_capabilities: [mountCap],
    parameters: { replicaCount: '3' },
  });
  assert.equal(wrongParams.confirmed, null);
  await assert.rejects(plugin.client.call('Controller', 'ValidateVolumeCapabilities', { volume_id: 'vol-nope', volume_capabilities: [mountCap] }), grpcStatus(status.NOT_FOUND));
  await assert.rejects(plugin.client.call('Controller', 'ValidateVolumeCapabilities', { volume_id: volume.volume_id }), grpcStatus(status.INVALID_ARGUMENT));
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
});

test('ListVolumes pages with next_token; an invalid starting_token is ABORTED', async () => {
  const ids: string[] = [];
  for (let i = 0; i < 5; i++) ids.push((await create({ name: `pvc-list-${i}`, volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB } })).volume.volume_id);
  const seen: string[] = [];
  let token = '';
  let pages = 0;
  do {
    const page = await plugin.client.call<{ entries: Array<{ volume: CsiVolume; status: { volume_condition: { abnormal: boolean } } }>; next_token: string }>('Controller', 'ListVolumes', {
      max_entries: 2,
      starting_token: token,
    });
    assert.ok(page.entries.length <= 2);
    for (const e of page.entries) {
      seen.push(e.volume.volume_id);
      assert.equal(e.status.volume_condition.abnormal, false);
    }
    token = page.next_token;
    pages++;
  } while (token !== '' && pages < 10);
  assert.deepEqual(seen, ids);
  assert.equal(pages, 3);
  await assert.rejects(plugin.client.call('Controller', 'ListVolumes', { max_entries: 2, starting_token: 'garbage' }), grpcStatus(status.ABORTED));
  await assert.rejects(plugin.client.call('Controller', 'ListVolumes', { starting_token: '99' }), grpcStatus(status.ABORTED));
  await assert.rejects(plugin.client.call('Controller', 'ListVolumes', { max_entries: -1 }), grpcStatus(status.INVALID_ARGUMENT));
  for (const id of ids) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: id });
});

test('ControllerGetVolume reports health as the volume condition; NOT_FOUND for an unknown volume', async () => {
  const { volume } = await create({ name: 'pvc-health', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB } });
  const healthy = await plugin.client.call<{ volume: CsiVolume; status: { volume_condition: { abnormal: boolean; message: string } } }>('Controller', 'ControllerGetVolume', { volume_id: volume.volume_id });
  assert.equal(healthy.volume.volume_id, volume.volume_id);
  assert.equal(healthy.status.volume_condition.abnormal, false);
  plugin.orchestrator.setHealth(volume.volume_id, { state: 'degraded', message: '1 of 3 replicas in sync, below quorum' });
  const degraded = await plugin.client.call<{ status: { volume_condition: { abnormal: boolean; message: string } } }>('Controller', 'ControllerGetVolume', { volume_id: volume.volume_id });
  assert.deepEqual(degraded.status.volume_condition, { abnormal: true, message: 'degraded: 1 of 3 replicas in sync, below quorum' });
  await assert.rejects(plugin.client.call('Controller', 'ControllerGetVolume', { volume_id: 'vol-nope' }), grpcStatus(status.NOT_FOUND));
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
});

test('ControllerExpandVolume: grows online, idempotent, never shrinks, node expansion only for filesystems', async () => {
  const { volume } = await create({ name: 'pvc-grow', volume_capabilities: [mountCap], capacity_range: { required_bytes: 10 * MiB } });
  const grown = await plugin.client.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', {
    volume_id: volume.volume_id,
    capacity_range: { required_bytes: 20 * MiB + 3 },
    volume_capability: mountCap,
  });
  assert.deepEqual(grown, { capacity_bytes: 21 * MiB, node_expansion_required: true });
  const repeat = await plugin.client.call<{ capacity_bytes: number }>('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: 20 * MiB + 3 }, volume_capability: mountCap });
  assert.equal(repeat.capacity_bytes, 21 * MiB);
  const smaller = await plugin.client.call<{ capacity_bytes: number }>('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: 5 * MiB } });
  assert.equal(smaller.capacity_bytes, 21 * MiB, 'a smaller request does not shrink');
  const block = await plugin.client.call<{ capacity_bytes: number; node_expansion_required: boolean }>('Controller', 'ControllerExpandVolume', {
    volume_id: volume.volume_id,
    capacity_range: { required_bytes: 30 * MiB },
    volume_capability: blockCap,
  });
  assert.deepEqual(block, { capacity_bytes: 30 * MiB, node_expansion_required: false });
  await assert.rejects(plugin.client.call('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: 5 * MiB, limit_bytes: 6 * MiB } }), grpcStatus(status.OUT_OF_RANGE));
  await assert.rejects(plugin.client.call('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: 17 * GiB } }), grpcStatus(status.OUT_OF_RANGE));
  await assert.rejects(plugin.client.call('Controller', 'ControllerExpandVolume', { volume_id: 'vol-nope', capacity_range: { required_bytes: MiB } }), grpcStatus(status.NOT_FOUND));
  await assert.rejects(plugin.client.call('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id }), grpcStatus(status.INVALID_ARGUMENT));
  await plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id });
});

test('concurrent calls on one volume: the second is ABORTED and the process keeps serving', async () => {
  const { volume } = await create({ name: 'pvc-race', volume_capabilities: [mountCap], capacity_range: { required_bytes: MiB } });
  plugin.orchestrator.delayMs = 300;
  try {
    const expand = (bytes: number): Promise<unknown> => plugin.client.call('Controller', 'ControllerExpandVolume', { volume_id: volume.volume_id, capacity_range: { required_bytes: bytes } });
    const results = await Promise.allSettled([expand(4 * MiB), expand(8 * MiB), plugin.client.call('Controller', 'DeleteVolume', { volume_id: volume.volume_id })]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results.filter((x): x is PromiseRejectedResult => x.status === 'rejected')) assert.equal((r.reason as { code: number }).code, status.ABORTED);
    // Two CreateVolume calls with one name race the same way.
    const twins = await Promise.allSettled([create({ name: 'pvc-twin', volume_capabilities: [mountCap] }), create({ name: 'pvc-twin', volume_capabilities: [mountCap] })]);
    assert.deepEqual(twins.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
  } finally {
    plugin.orchestrator.delayMs = 0;
  }
  // Reads are not locked and the service still answers everyone.
  assert.equal((await plugin.client.call<{ volume: CsiVolume }>('Controller', 'ControllerGetVolume', { volume_id: volume.volume_id })).volume.capacity_bytes, 4 * MiB);
  const twin = await plugin.orchestrator.findVolumeByName('pvc-twin');
  for (const id of [volume.volume_id, twin?.volumeId ?? '']) await plugin.client.call('Controller', 'DeleteVolume', { volume_id: id });
});
