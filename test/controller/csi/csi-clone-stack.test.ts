import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import { requireTools } from '../../support/host-tools';
import { LocalCsiProcess } from './local-csi-process';
import { qemuIo } from '../../cli/stack-helpers';

// Clones through `trireme csi --mode controller` over the local orchestrator:
// data goes in and comes out with qemu-io over iscsi:// at each volume's own
// portal, so the copy is checked by an independent initiator end to end.
const dir = mkdtempSync(join(tmpdir(), 'trireme-csi-clone-'));
let stack: LocalCsiProcess | undefined;

after(async () => {
  await stack?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const MiB = 1024 * 1024;
const CAPS = [{ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }];

interface CsiVolume {
  volume_id: string;
  capacity_bytes: number;
  volume_context: Record<string, string>;
  content_source: { snapshot?: { snapshot_id: string }; volume?: { volume_id: string } } | null;
}

const urlOf = (v: CsiVolume): string => `iscsi://${v.volume_context.portal}/${v.volume_context.iqn}/${v.volume_context.lun}`;
const grpcCode = (code: status) => (err: { code?: number }) => err.code === code;

test('CSI clones over the local stack: a volume from a snapshot holds the snapshot, not later writes, and takes new writes', { timeout: 180_000 }, async (t) => {
  if (!requireTools(t, { 'qemu-io': 'qemu-utils' })) return;
  // Below the ephemeral range (32768+), where port-0 servers of other tests come and go.
  const base = 10_000 + Math.floor(Math.random() * 200) * 50;
  stack = await LocalCsiProcess.start(dir, base);
  const { client } = stack;
  const create = (request: object) => client.call<{ volume: CsiVolume }>('Controller', 'CreateVolume', { volume_capabilities: CAPS, ...request }).then((r) => r.volume);
  try {
    const caps = await client.call<{ capabilities: Array<{ rpc: { type: string } }> }>('Controller', 'ControllerGetCapabilities');
    assert.ok(caps.capabilities.some((c) => c.rpc.type === 'CLONE_VOLUME'), 'CLONE_VOLUME is advertised');

    const a = await create({ name: 'pvc-source', capacity_range: { required_bytes: 16 * MiB }, parameters: { replicaCount: '3' } });
    qemuIo(urlOf(a), 'write -P 0x11 0 1M');
    qemuIo(urlOf(a), 'write -P 0x22 4M 512k');
    const snap = (await client.call<{ snapshot: { snapshot_id: string } }>('Controller', 'CreateSnapshot', { name: 'before', source_volume_id: a.volume_id })).snapshot;
    // After the snapshot: overwrite, and fill a range the snapshot holds as zeros.
    qemuIo(urlOf(a), 'write -P 0x33 0 1M');
    qemuIo(urlOf(a), 'write -P 0x44 8M 1M');

    const fromSnapshot = { name: 'pvc-restored', capacity_range: { required_bytes: 16 * MiB }, parameters: { replicaCount: '2' }, volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } } };
    const b = await create(fromSnapshot);
    assert.equal(b.capacity_bytes, 16 * MiB);
    assert.deepEqual(b.content_source?.snapshot, { snapshot_id: snap.snapshot_id });
    qemuIo(urlOf(b), 'read -P 0x11 0 1M');
    qemuIo(urlOf(b), 'read -P 0x22 4M 512k');
    qemuIo(urlOf(b), 'read -P 0 8M 1M');
    qemuIo(urlOf(b), 'read -P 0 15M 1M');
    // New writes win over the copied blocks they overlap, and leave the rest.
    qemuIo(urlOf(b), 'write -P 0x55 0 64k');
    qemuIo(urlOf(b), 'write -P 0x66 4M 4k');
    qemuIo(urlOf(b), 'read -P 0x55 0 64k');
    qemuIo(urlOf(b), 'read -P 0x11 64k 960k');
    qemuIo(urlOf(b), 'read -P 0x66 4M 4k');
    qemuIo(urlOf(b), 'read -P 0x22 4100k 508k');
    // The source is untouched by its clone.
    qemuIo(urlOf(a), 'read -P 0x33 0 1M');

    // Idempotent by name; a different source for the same name is ALREADY_EXISTS.
    assert.equal((await create(fromSnapshot)).volume_id, b.volume_id);
    await assert.rejects(create({ ...fromSnapshot, volume_content_source: { volume: { volume_id: a.volume_id } } }), grpcCode(status.ALREADY_EXISTS));
    // CSI spec: a missing source is NOT_FOUND, a size below the source's OUT_OF_RANGE.
    await assert.rejects(create({ name: 'pvc-missing', volume_content_source: { snapshot: { snapshot_id: `${a.volume_id}@nope` } } }), grpcCode(status.NOT_FOUND));
    await assert.rejects(create({ name: 'pvc-missing', volume_content_source: { volume: { volume_id: 'no-such-volume' } } }), grpcCode(status.NOT_FOUND));
    await assert.rejects(create({ name: 'pvc-small', capacity_range: { limit_bytes: 8 * MiB }, volume_content_source: { snapshot: { snapshot_id: snap.snapshot_id } } }), grpcCode(status.OUT_OF_RANGE));

    // A clone of a volume copies its head, larger than the source, and leaves no snapshot behind.
    const c = await create({ name: 'pvc-copy', capacity_range: { required_bytes: 24 * MiB }, parameters: { replicaCount: '1' }, volume_content_source: { volume: { volume_id: a.volume_id } } });
    assert.equal(c.capacity_bytes, 24 * MiB);
    qemuIo(urlOf(c), 'read -P 0x33 0 1M');
    qemuIo(urlOf(c), 'read -P 0x22 4M 512k');
    qemuIo(urlOf(c), 'read -P 0x44 8M 1M');
    qemuIo(urlOf(c), 'read -P 0 16M 8M');
    const left = await client.call<{ entries: Array<{ snapshot: { snapshot_id: string } }> }>('Controller', 'ListSnapshots', { source_volume_id: a.volume_id });
    assert.deepEqual(left.entries.map((e) => e.snapshot.snapshot_id), [snap.snapshot_id]);

    for (const v of [b, c]) await client.call('Controller', 'DeleteVolume', { volume_id: v.volume_id });
    await client.call('Controller', 'DeleteSnapshot', { snapshot_id: snap.snapshot_id });
    await client.call('Controller', 'DeleteVolume', { volume_id: a.volume_id });
    assert.deepEqual((await client.call<{ entries: unknown[] }>('Controller', 'ListVolumes')).entries, []);
  } catch (err) {
    // The stack's own log says which child failed and why.
    t.diagnostic(stack.output().slice(-4000));
    throw err;
  } finally {
    client.close();
  }
});
