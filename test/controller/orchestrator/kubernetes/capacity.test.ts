import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import type { TriremeVolume } from '../../../../src/controller/orchestrator/kubernetes';
import { clusterCapacity, parseQuantity } from '../../../../src/controller/orchestrator/kubernetes/capacity';
import { node } from './fake-api-server';
import { harness } from './support';

const GiB = 1024 ** 3;
const SELECTOR = { 'trireme.io/storage': 'true' };

/** A storage node whose kubelet reports this much allocatable ephemeral-storage. */
function storageNode(name: string, allocatable: string | undefined, ready = true): V1Node {
  const n = node(name, ready) as unknown as V1Node;
  return { ...n, status: { ...n.status, ...(allocatable === undefined ? {} : { allocatable: { 'ephemeral-storage': allocatable } }) } };
}

function volumeOn(nodes: string[], sizeBytes: number): TriremeVolume {
  return { spec: { sizeBytes, replicas: nodes.map((n, index) => ({ index, node: n })) } } as unknown as TriremeVolume;
}

describe('GetCapacity on Kubernetes', () => {
  test('quantities as the kubelet reports them', () => {
    assert.equal(parseQuantity('57206508Ki'), 57206508 * 1024);
    assert.equal(parseQuantity('64Gi'), 64 * GiB);
    assert.equal(parseQuantity('52717578900'), 52717578900);
    assert.equal(parseQuantity('1e9'), 1e9);
    assert.equal(parseQuantity('2G'), 2e9);
    assert.equal(parseQuantity('1.5Gi'), 1.5 * GiB);
    for (const bad of [undefined, '', 'lots', '100m', '-5Gi', '5 Gi']) assert.equal(parseQuantity(bad), undefined, String(bad));
  });

  test('without a budget: allocatable ephemeral-storage of eligible nodes, less what replicas there may grow to, per replica', () => {
    const nodes = [storageNode('a', '100Gi'), storageNode('b', '100Gi'), storageNode('c', '40Gi'), storageNode('down', '500Gi', false), storageNode('unlabelled-kubelet', undefined)];
    const volumes = [volumeOn(['a', 'b', 'c'], 10 * GiB), volumeOn(['down'], 100 * GiB)];
    // a: 90, b: 90, c: 30 free; the NotReady node and the one reporting nothing offer nothing.
    assert.deepEqual(clusterCapacity(nodes, volumes, 3, SELECTOR, 0), { availableBytes: 70 * GiB });
    assert.deepEqual(clusterCapacity(nodes, volumes, 1, SELECTOR, 0), { availableBytes: 210 * GiB });
    // A replica count beyond the nodes that qualify can place nothing.
    assert.deepEqual(clusterCapacity(nodes, volumes, 5, SELECTOR, 0), { availableBytes: 0 });
    // Volumes over-committed on a node never make it negative.
    assert.deepEqual(clusterCapacity([storageNode('a', '1Gi')], [volumeOn(['a'], 4 * GiB)], 1, SELECTOR, 0), { availableBytes: 0 });
  });

  test('with a budget per node: the budget replaces allocatable and bounds the largest volume', () => {
    const nodes = [storageNode('a', '100Gi'), storageNode('b', '100Gi'), storageNode('c', '100Gi')];
    assert.deepEqual(clusterCapacity(nodes, [volumeOn(['a', 'b', 'c'], 2 * GiB)], 3, SELECTOR, 8 * GiB), { availableBytes: 6 * GiB, maximumVolumeBytes: 6 * GiB });
    assert.deepEqual(clusterCapacity(nodes, [], 1, SELECTOR, 8 * GiB), { availableBytes: 24 * GiB, maximumVolumeBytes: 8 * GiB });
  });

  test('the orchestrator without a budget reports the nodes\' allocatable through the API server', async () => {
    const h = await harness([], undefined, { nodeCapacityBytes: 0 });
    try {
      for (const [name, size] of [['pi-1', '50Gi'], ['pi-2', '60Gi'], ['pi-3', '70Gi']] as const) h.api.put('', 'nodes', '', storageNode(name, size) as never);
      const cap = await h.orchestrator.capacity({ replicaCount: 3, fsType: 'ext4', chap: false });
      assert.equal(cap.availableBytes, 60 * GiB);
      assert.equal(cap.maximumVolumeBytes, undefined, 'no hard limit is claimed from an estimate');
      await h.orchestrator.createVolume('pvc-cap-1', 30 * GiB, { replicaCount: 3, fsType: 'ext4', chap: false });
      assert.equal((await h.orchestrator.capacity({ replicaCount: 3, fsType: 'ext4', chap: false })).availableBytes, 30 * GiB);
    } finally {
      await h.close();
    }
  });
});
