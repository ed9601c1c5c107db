import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { join } from 'node:path';
import { node } from '../controller/orchestrator/kubernetes/fake-api-server';
import { eventually, harness, NS, type Harness } from '../controller/orchestrator/kubernetes/support';
import { render, REPO, type Manifest } from './kustomize';

type Rule = { apiGroups: string[]; resources: string[]; verbs: string[] };

/** The rules bound to a service account in deploy/: Roles only in their namespace, ClusterRoles everywhere. */
function rulesFor(manifests: Manifest[], serviceAccount: string): Array<Rule & { namespace?: string }> {
  const out: Array<Rule & { namespace?: string }> = [];
  for (const b of manifests.filter((m) => m.kind === 'RoleBinding' || m.kind === 'ClusterRoleBinding') as Array<Manifest & { subjects: Array<{ kind: string; name: string }>; roleRef: { kind: string; name: string } }>) {
    if (!b.subjects.some((s) => s.kind === 'ServiceAccount' && s.name === serviceAccount)) continue;
    const role = manifests.find((m) => m.kind === b.roleRef.kind && m.metadata.name === b.roleRef.name) as (Manifest & { rules: Rule[] }) | undefined;
    assert.ok(role, `binding ${b.metadata.name} refers to a missing ${b.roleRef.kind} ${b.roleRef.name}`);
    for (const r of role.rules) out.push({ ...r, ...(b.kind === 'RoleBinding' ? { namespace: b.metadata.namespace } : {}) });
  }
  return out;
}

function allowed(rules: Array<Rule & { namespace?: string }>, call: { group: string; resource: string; subresource: string; verb: string; namespace: string }): boolean {
  const resource = call.subresource ? `${call.resource}/${call.subresource}` : call.resource;
  return rules.some((r) => r.apiGroups.includes(call.group) && r.resources.includes(resource) && r.verbs.includes(call.verb) && (r.namespace === undefined || r.namespace === call.namespace));
}

describe('RBAC in deploy/ against the calls the Kubernetes orchestrator makes', () => {
  let h: Harness;
  const manifests = render(join(REPO, 'deploy/kustomize/base'));

  before(async () => {
    // Every code path that talks to the API: create (with CHAP), expand, snapshots, replica replacement through the watch, resync, delete, kubectl delete.
    h = await harness(['pi-1', 'pi-2', 'pi-3', 'pi-4']);
    const r = h.newReconciler(60_000);
    await r.start();
    const v = await h.orchestrator.createVolume('pvc-rbac-1', 1 << 30, { replicaCount: 3, fsType: 'ext4', chap: true });
    h.bootController(v.volumeId);
    await h.orchestrator.expandVolume(v.volumeId, 2 << 30);
    const s = await h.orchestrator.createSnapshot('snap-a', v.volumeId);
    await h.orchestrator.listSnapshots();
    await h.orchestrator.deleteSnapshot(s.snapshotId);
    await h.orchestrator.capacity({ replicaCount: 3, fsType: 'ext4', chap: false });
    await h.orchestrator.ready();
    await h.orchestrator.listVolumes();
    const placed = v.volumeId;
    const lost = (h.api.get('trireme.io', 'triremevolumes', NS, placed)?.spec as { replicas: Array<{ node: string }> }).replicas[0].node;
    h.api.remove('', 'nodes', '', lost);
    await eventually(() => !(h.api.get('trireme.io', 'triremevolumes', NS, placed)?.spec as { replicas: Array<{ node: string }> }).replicas.some((x) => x.node === lost));
    await r.settled();
    await h.orchestrator.deleteVolume(placed);
    const w = await h.orchestrator.createVolume('pvc-rbac-2', 1 << 30, { replicaCount: 1, fsType: 'xfs', chap: false });
    await h.kube.deleteVolume(w.volumeId);
    await eventually(() => h.api.get('trireme.io', 'triremevolumes', NS, w.volumeId) === undefined);
    h.api.put('', 'nodes', '', node('pi-9'));
    await r.settled();
  });
  after(async () => {
    await h.close();
  });

  test('every call is allowed to the trireme-controller service account', () => {
    const rules = rulesFor(manifests, 'trireme-controller');
    const denied = h.api.calls.filter((c) => !allowed(rules, c));
    assert.deepEqual(denied, []);
  });

  test('the orchestrator roles grant exactly the verbs the code uses', () => {
    const orchestratorRoles = manifests.filter((m) => m.metadata.name.startsWith('trireme-orchestrator') && (m.kind === 'Role' || m.kind === 'ClusterRole')) as Array<Manifest & { rules: Rule[] }>;
    const granted = new Set<string>();
    for (const role of orchestratorRoles) for (const r of role.rules) for (const g of r.apiGroups) for (const res of r.resources) for (const v of r.verbs) granted.add(`${g}/${res}:${v}`);
    const used = new Set(h.api.calls.map((c) => `${c.group}/${c.subresource ? `${c.resource}/${c.subresource}` : c.resource}:${c.verb}`));
    assert.deepEqual([...granted].sort(), [...used].sort());
  });

  test('the node plugin and the per-volume pods have no roles and no token', () => {
    for (const sa of ['trireme-node', 'trireme-volume']) {
      assert.deepEqual(rulesFor(manifests, sa), []);
      const account = manifests.find((m) => m.kind === 'ServiceAccount' && m.metadata.name === sa) as Manifest & { automountServiceAccountToken?: boolean };
      assert.equal(account.automountServiceAccountToken, false);
    }
  });
});
