import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import type { V1Node } from '@kubernetes/client-node';
import type { TriremeVolume } from '../../../../src/controller/orchestrator/kubernetes';
import { NodeReadiness, parseGrace } from '../../../../src/controller/orchestrator/kubernetes/node-health';
import { node } from './fake-api-server';
import { harness, NS, type Harness } from './support';

const GiB = 1024 ** 3;
const GRACE = 5 * 60_000;
const T0 = Date.parse('2026-11-25T10:00:00Z');

/** A node whose kubelet reported NotReady (False) or stopped reporting (Unknown) at `since`. */
function notReady(name: string, since: number, status: 'False' | 'Unknown' = 'Unknown') {
  const n = node(name, false);
  n.status = { conditions: [{ type: 'Ready', status, lastTransitionTime: new Date(since).toISOString() }] };
  return n;
}

const address = (id: string, index: number): string => `${id}-r${index}.${NS}.svc:9700`;

/**
 * Replacement of replicas on NotReady nodes, driven by node condition updates
 * in the fake API server (no cluster can run here) and a fake clock. The
 * volume's controller is the fake one: it reports the replica modes the test
 * sets, which is what the safety rules read.
 */
describe('Reconciler: replicas on nodes NotReady past the grace period', () => {
  let h: Harness | undefined;
  let now = T0;
  afterEach(async () => {
    await h?.close();
    h = undefined;
    now = T0;
  });

  async function volume(id: string, nodes: string[], replicaCount = 3) {
    h = await harness(nodes);
    await h.orchestrator.createVolume(id, GiB, { replicaCount, fsType: 'ext4', chap: false });
    const control = h.bootController(id);
    const reconciler = h.newReconciler(60_000, { now: () => now, replicaNodeGraceMs: GRACE });
    const spec = () => (h?.api.get('trireme.io', 'triremevolumes', NS, id) as unknown as TriremeVolume).spec;
    const placed = (): string[] => spec().replicas.map((r) => `${r.index}@${r.node}`);
    return { control, reconciler, spec, placed, h };
  }

  test('a replica whose node stays NotReady past the grace is replaced on a spare node and rebuilt; not before', async () => {
    const id = 'pvc-0e0e0000-0000-4000-8000-000000000001';
    const { control, reconciler, spec, placed, h } = await volume(id, ['pi-1', 'pi-2', 'pi-3', 'pi-4']);
    // pi-4 took no replica: placement is least loaded, then by name, so pi-1..3 hold r0..r2.
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3']);
    h.api.put('', 'nodes', '', notReady('pi-2', T0, 'False'));
    control.down.add(address(id, 1));
    now = T0 + GRACE - 1000;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3'], 'within the grace period nothing moves');
    assert.deepEqual(control.log, []);
    now = T0 + GRACE;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '2@pi-3', '3@pi-4']);
    assert.equal(spec().nextReplicaIndex, 4);
    assert.deepEqual(control.log, [`remove ${address(id, 1)}`, `add ${address(id, 3)}`]);
    assert.ok(h.api.get('apps', 'deployments', NS, `${id}-r3`));
    assert.equal(h.api.get('apps', 'deployments', NS, `${id}-r1`), undefined);
    const status = (h.api.get('trireme.io', 'triremevolumes', NS, id) as unknown as TriremeVolume).status;
    assert.equal(status?.replacements, 1);
    assert.equal(status?.state, 'rebuilding');
  });

  test('one replacement at a time per volume: a second NotReady node waits until the rebuild is done', async () => {
    const id = 'pvc-0e0e0000-0000-4000-8000-000000000002';
    const { control, reconciler, placed, h } = await volume(id, ['pi-1', 'pi-2', 'pi-3', 'pi-4', 'pi-5']);
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3']);
    h.api.put('', 'nodes', '', notReady('pi-2', T0));
    control.down.add(address(id, 1));
    now = T0 + GRACE;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '2@pi-3', '3@pi-4']);
    // Meanwhile pi-3 goes too. r3 is still rebuilding (WO), and r2 down would leave r0 alone in RW.
    h.api.put('', 'nodes', '', notReady('pi-3', T0 + GRACE));
    control.down.add(address(id, 2));
    now = T0 + 3 * GRACE;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '2@pi-3', '3@pi-4'], 'no second replacement while one rebuilds');
    // The rebuild finishes (r3 RW): r0 and r3 are a quorum of RW without r2, so r2 goes to the last spare node.
    control.log.splice(0);
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '3@pi-4', '4@pi-5']);
    assert.deepEqual(control.log, [`remove ${address(id, 2)}`, `add ${address(id, 4)}`]);
  });

  test('never below a quorum of RW replicas, never a single replica, never one the controller still sees in RW', async () => {
    const id = 'pvc-0e0e0000-0000-4000-8000-000000000003';
    const { control, reconciler, placed, h } = await volume(id, ['pi-1', 'pi-2', 'pi-3', 'pi-4', 'pi-5']);
    h.api.put('', 'nodes', '', notReady('pi-2', T0));
    h.api.put('', 'nodes', '', notReady('pi-3', T0));
    now = T0 + 10 * GRACE;
    // Both nodes NotReady, but their replicas still serve the controller (the nodes lost the API server, not the data path).
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3']);
    // Both replicas down: replacing either leaves one RW replica of three, below the quorum of two.
    control.down.add(address(id, 1));
    control.down.add(address(id, 2));
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3']);
    assert.deepEqual(control.log, []);
    // The controller does not answer: nothing is known about the modes, nothing is replaced.
    control.down.delete(address(id, 2));
    control.reachable = false;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '1@pi-2', '2@pi-3']);
    // Back: r1 down, r0 and r2 RW make the quorum, so r1 is replaced.
    control.reachable = true;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1', '2@pi-3', '3@pi-4']);
  });

  test('a one-replica volume on a NotReady node is never replaced: its only copy of the data is there', async () => {
    const id = 'pvc-0e0e0000-0000-4000-8000-000000000004';
    const { control, reconciler, placed, h } = await volume(id, ['pi-1', 'pi-2'], 1);
    assert.deepEqual(placed(), ['0@pi-1']);
    h.api.put('', 'nodes', '', notReady('pi-1', T0, 'False'));
    control.down.add(address(id, 0));
    now = T0 + 100 * GRACE;
    await reconciler.reconcileAll();
    assert.deepEqual(placed(), ['0@pi-1']);
  });

  test('a Ready condition without a transition time counts from when the reconciler first saw it', () => {
    const readiness = new NodeReadiness();
    const asNode = (n: ReturnType<typeof node>): V1Node => n as unknown as V1Node;
    const bare = asNode(node('pi-7', false));
    assert.equal(readiness.overdue(bare, T0, GRACE), false);
    assert.equal(readiness.overdue(bare, T0 + GRACE - 1, GRACE), false);
    assert.equal(readiness.overdue(bare, T0 + GRACE, GRACE), true);
    // Ready again resets the count; a later NotReady starts over.
    assert.equal(readiness.overdue(asNode(node('pi-7', true)), T0 + GRACE, GRACE), false);
    assert.equal(readiness.overdue(bare, T0 + 2 * GRACE, GRACE), false);
    assert.equal(readiness.notReadySince(asNode(notReady('pi-8', T0 - 42_000)), T0), T0 - 42_000);
  });

  test('--replica-node-grace durations', () => {
    assert.equal(parseGrace('5m'), 300_000);
    assert.equal(parseGrace('90s'), 90_000);
    assert.equal(parseGrace('120'), 120_000);
    assert.equal(parseGrace('1h'), 3_600_000);
    assert.equal(parseGrace('250ms'), 250);
    for (const bad of ['', '5 minutes', '-1m', '1.5m', '5d']) assert.throws(() => parseGrace(bad), { code: 'ERR_INVALID_ARGUMENT' });
  });
});
