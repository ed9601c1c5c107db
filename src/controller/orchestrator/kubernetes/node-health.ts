import type { V1Node } from '@kubernetes/client-node';
import { InvalidArgumentError } from '../../../common/errors';

/** How long a replica's node may be NotReady before the replica is replaced elsewhere. */
export const DEFAULT_REPLICA_NODE_GRACE_MS = 5 * 60_000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `--replica-node-grace`: a whole number with an optional unit (ms, s, m, h; seconds without one), e.g. 5m, 90s. */
export function parseGrace(text: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new InvalidArgumentError(`--replica-node-grace: expected a duration such as 300s, 5m or 1h, got "${text}"`);
  const value = Number(m[1]) * UNITS[m[2] ?? 's'];
  if (!Number.isSafeInteger(value)) throw new InvalidArgumentError(`--replica-node-grace: ${text} is too long`);
  return value;
}

/**
 * Since when nodes have not been Ready. The Ready condition's
 * lastTransitionTime is the node lifecycle controller's own record of the
 * change (False: the kubelet says so; Unknown: it stopped reporting), so the
 * count survives a restart of this process. A condition without one (or no
 * Ready condition at all) counts from when this process first saw it.
 */
export class NodeReadiness {
  private readonly firstSeen = new Map<string, number>();

  notReadySince(node: V1Node, now: number): number | undefined {
    const name = node.metadata?.name ?? '';
    const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status === 'True') {
      this.firstSeen.delete(name);
      return undefined;
    }
    const since = ready?.lastTransitionTime === undefined ? NaN : new Date(ready.lastTransitionTime as unknown as string | Date).getTime();
    if (Number.isFinite(since)) return since;
    if (!this.firstSeen.has(name)) this.firstSeen.set(name, now);
    return this.firstSeen.get(name);
  }

  /** Whether the node has been NotReady for at least `graceMs` at `now`. */
  overdue(node: V1Node, now: number, graceMs: number): boolean {
    const since = this.notReadySince(node, now);
    return since !== undefined && now - since >= graceMs;
  }
}
