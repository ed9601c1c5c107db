import type { V1Node } from '@kubernetes/client-node';
import type { TriremeVolume } from './types';

/** A node can take a new replica when it is Ready, schedulable and carries the storage label (if one is required). */
export function eligibleNode(node: V1Node, nodeSelector: Record<string, string>): boolean {
  if (node.spec?.unschedulable) return false;
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  if (ready?.status !== 'True') return false;
  const labels = node.metadata?.labels ?? {};
  return Object.entries(nodeSelector).every(([k, v]) => labels[k] === v);
}

/**
 * Picks `count` distinct nodes for new replicas, none of them in `exclude`
 * (nodes that already hold a replica of the volume: two copies on one disk
 * would survive nothing). Least-loaded first, by name on ties, so placement is
 * deterministic. Returns fewer when not enough nodes qualify.
 */
export function pickNodes(nodes: V1Node[], volumes: TriremeVolume[], count: number, exclude: Set<string>, nodeSelector: Record<string, string>): string[] {
  const load = new Map<string, number>();
  for (const v of volumes) for (const r of v.spec.replicas) load.set(r.node, (load.get(r.node) ?? 0) + 1);
  return nodes
    .filter((n) => eligibleNode(n, nodeSelector) && !exclude.has(n.metadata?.name ?? ''))
    .map((n) => n.metadata?.name ?? '')
    .sort((a, b) => (load.get(a) ?? 0) - (load.get(b) ?? 0) || a.localeCompare(b))
    .slice(0, count);
}
