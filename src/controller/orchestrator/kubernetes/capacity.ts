import type { V1Node } from '@kubernetes/client-node';
import type { CapacityInfo } from '../../csi/orchestrator';
import { eligibleNode } from './placement';
import type { TriremeVolume } from './types';

const SUFFIXES: Record<string, number> = {
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
  k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
};

/**
 * A Kubernetes resource quantity in bytes ("57206508Ki", "64Gi", "52717578900",
 * "1e9"); undefined for anything else. Milli and smaller suffixes never appear
 * on byte resources and are refused rather than rounded.
 */
export function parseQuantity(text: string | undefined): number | undefined {
  const m = /^\+?(\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$/.exec((text ?? '').trim());
  if (!m) return undefined;
  const bytes = Number(m[1]) * (m[2] ? SUFFIXES[m[2]] : 1);
  return Number.isFinite(bytes) ? Math.floor(bytes) : undefined;
}

/**
 * GetCapacity for the cluster. Each eligible storage node offers either the
 * configured budget or, without one, its allocatable ephemeral-storage: the
 * kubelet's file system, where the replicas' hostPath lives too. That is the
 * file system's size less the kubelet's reservations, shared with images and
 * logs, so it is an upper estimate, not free space. What the replicas placed
 * on a node may grow to (their volume size) is taken off it. A volume of R
 * replicas needs R distinct nodes: nothing is available when fewer qualify.
 * With a budget, no volume is larger than it; without one the largest is left
 * unsaid (volumes are thin and the estimate is no hard limit), so CreateVolume
 * refuses nothing on it.
 */
export function clusterCapacity(nodes: V1Node[], volumes: TriremeVolume[], replicaCount: number, nodeSelector: Record<string, string>, budgetPerNode: number): CapacityInfo {
  const held = new Map<string, number>();
  for (const v of volumes) for (const r of v.spec.replicas) held.set(r.node, (held.get(r.node) ?? 0) + v.spec.sizeBytes);
  const free = nodes
    .filter((n) => eligibleNode(n, nodeSelector))
    .map((n) => {
      const offered = budgetPerNode > 0 ? budgetPerNode : (parseQuantity(n.status?.allocatable?.['ephemeral-storage']) ?? 0);
      return Math.max(0, offered - (held.get(n.metadata?.name ?? '') ?? 0));
    })
    .sort((a, b) => b - a);
  const copies = Math.max(1, replicaCount);
  // Too few nodes is no size limit: CreateVolume then fails as RESOURCE_EXHAUSTED (placement), not OUT_OF_RANGE.
  if (free.length < copies) return { availableBytes: 0 };
  const available = Math.floor(free.reduce((sum, f) => sum + f, 0) / copies);
  return { availableBytes: available, ...(budgetPerNode > 0 ? { maximumVolumeBytes: Math.min(available, budgetPerNode) } : {}) };
}
