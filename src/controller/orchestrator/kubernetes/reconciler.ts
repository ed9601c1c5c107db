import type { V1Node } from '@kubernetes/client-node';
import { errorCode } from '../../../common/errors';
import type { Logger } from '../../../common/logger';
import type { VolumeStatusView } from '../../management/volume-control';
import { isNotFound, retryOnConflict, type KubeClient } from './kube-client';
import type { WorkloadSettings } from './manifests';
import { managementAddress, replicaAddress } from './names';
import { dropSnapshot } from './clone-population';
import { DEFAULT_REPLICA_NODE_GRACE_MS, NodeReadiness } from './node-health';
import { pickNodes } from './placement';
import { isPopulating, type TriremeVolume, type TriremeVolumeStatus } from './types';
import type { ControlConnector } from './volume-control-client';
import { ControlClients } from './volume-control-client';
import { ensureWorkloads, finalizeVolume, removeReplicaWorkload } from './workloads';

export interface ReconcilerOptions {
  readonly kube: KubeClient;
  readonly settings: WorkloadSettings;
  readonly logger: Logger;
  readonly connect: ControlConnector;
  readonly nodeSelector?: Record<string, string>;
  /** Full pass over every volume this often, whatever the watches said (missed events, drift). */
  readonly resyncMs?: number;
  /** How long a replica's node may stay NotReady before the replica is replaced (`--replica-node-grace`). */
  readonly replicaNodeGraceMs?: number;
  /** The clock for that grace (tests move it by hand). */
  readonly now?: () => number;
}

/**
 * Keeps each TriremeVolume's workloads in line with its spec: watch-driven
 * (TriremeVolumes and Nodes), with a periodic resync. One pass per volume:
 * finish a deletion, replace replicas whose node is gone or NotReady past the
 * grace period, recreate missing workloads, record the controller's view in
 * status. A node that stays NotReady sends no further events: the resync is
 * what notices the grace running out, so it comes at most one resync late.
 */
export class Reconciler {
  private readonly controls: ControlClients;
  private readonly aborts: AbortController[] = [];
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> = Promise.resolve();
  private pending = false;
  private stopped = false;
  private readonly readiness = new NodeReadiness();
  /** Counts passes, for tests and the debug log. */
  passes = 0;

  constructor(private readonly options: ReconcilerOptions) {
    this.controls = new ControlClients(options.connect);
  }

  async start(): Promise<void> {
    await this.watch(this.options.kube.volumesPath(), 'volumes');
    await this.watch('/api/v1/nodes', 'nodes');
    this.timer = setInterval(() => this.trigger(), this.options.resyncMs ?? 30_000);
    this.trigger();
  }

  /**
   * (Re)starts one watch. The server ends watches on its own (timeouts, 410
   * Gone for a too-old resourceVersion); each end restarts from a fresh list
   * after a short pause, and the pass that follows catches anything missed.
   */
  private async watch(path: string, what: string, failures = 0): Promise<void> {
    if (this.stopped) return;
    let events = 0;
    const restart = (err: unknown): void => {
      if (this.stopped) return;
      // A watch that delivered events ended normally; one that keeps failing (API server away) backs off up to 30 s.
      const streak = err && events === 0 ? failures + 1 : 0;
      if (err) this.options.logger.warn({ err: String(err), what, failures: streak }, 'watch ended, restarting');
      const delay = Math.min(30_000, 500 * 2 ** Math.min(streak, 6));
      setTimeout(() => void this.watch(path, what, streak).catch(restart), delay).unref();
      this.trigger();
    };
    const onEvent = (phase: string, object: unknown): void => {
      events++;
      // ERROR carries a Status (410 Gone: our starting point was compacted away); the server closes the watch next.
      if (phase === 'ERROR') this.options.logger.warn({ what, status: object }, 'watch error event');
      this.trigger();
    };
    const abort = await this.options.kube.watcher.watch(path, { allowWatchBookmarks: true }, onEvent, restart);
    this.aborts.push(abort);
  }

  /** Coalesces bursts of events into one pass at a time. */
  trigger(): void {
    if (this.stopped) return;
    if (this.pending) return;
    this.pending = true;
    this.running = this.running.then(async () => {
      this.pending = false;
      await this.reconcileAll().catch((err: unknown) => this.options.logger.error({ err }, 'reconcile pass failed'));
    });
  }

  /** Waits for the passes queued so far (tests). */
  async settled(): Promise<void> {
    await this.running;
  }

  async reconcileAll(): Promise<void> {
    const [volumes, nodes] = await Promise.all([this.options.kube.listVolumes(), this.options.kube.listNodes()]);
    const byName = new Map(nodes.items.map((n) => [n.metadata?.name ?? '', n]));
    for (const v of volumes.items) {
      try {
        await this.reconcile(v, byName, volumes.items);
      } catch (err) {
        // One broken volume must not stop the others; the next pass retries it.
        this.options.logger.error({ err, volume: v.metadata.name }, 'reconcile failed');
      }
    }
    this.passes++;
  }

  async reconcile(volume: TriremeVolume, nodes: Map<string, V1Node>, all: TriremeVolume[]): Promise<void> {
    const { kube, logger } = this.options;
    const id = volume.metadata.name;
    if (volume.metadata.deletionTimestamp) {
      // A volume clone deleted before its copy finished leaves its snapshot on the source otherwise.
      const clone = volume.spec.clone;
      if (clone?.kind === 'volume' && isPopulating(volume)) {
        await dropSnapshot(this.controls.get(managementAddress(clone.volume, kube.namespace)), clone.snapshot).catch((err: unknown) =>
          logger.warn({ volume: id, source: clone.volume, snapshot: clone.snapshot, err: (err as Error).message }, 'could not delete the snapshot cut for an unfinished clone'),
        );
      }
      await finalizeVolume(kube, volume);
      this.controls.drop(managementAddress(id, kube.namespace));
      logger.info({ volume: id }, 'volume finalized');
      return;
    }
    let current = volume;
    // A clone being filled has no controller to take a replica change; CreateVolume's retry redoes its copy.
    if (!isPopulating(volume)) {
      const gone = volume.spec.replicas.filter((r) => !nodes.has(r.node));
      for (const lost of gone) {
        const replaced = await this.replace(current, lost.index, [...nodes.values()], all);
        if (!replaced) break;
        current = replaced;
      }
      if (gone.length === 0) current = (await this.replaceNotReady(current, nodes, all)) ?? current;
    }
    await ensureWorkloads(kube, current, this.options.settings);
    await this.updateStatus(current, nodes);
  }

  /**
   * Replaces at most one replica whose node has been NotReady for longer than
   * the grace period, and only when that is safe: the controller answers, no
   * rebuild is running (one replacement at a time per volume), and the other
   * replicas in RW mode still make a quorum (floor(n/2)+1, DESIGN.md invariant 1),
   * so the volume keeps acknowledging writes and the newcomer has a source.
   * A replica the controller still sees in RW mode is serving (the node lost
   * touch with the API server, not with the controller) and is left alone.
   */
  private async replaceNotReady(volume: TriremeVolume, nodes: Map<string, V1Node>, all: TriremeVolume[]): Promise<TriremeVolume | undefined> {
    const { kube, logger } = this.options;
    const id = volume.metadata.name;
    const now = (this.options.now ?? Date.now)();
    const grace = this.options.replicaNodeGraceMs ?? DEFAULT_REPLICA_NODE_GRACE_MS;
    const overdue = volume.spec.replicas.filter((r) => {
      const n = nodes.get(r.node);
      return n !== undefined && this.readiness.overdue(n, now, grace);
    });
    if (overdue.length === 0) return undefined;
    let view: VolumeStatusView;
    try {
      view = await this.controls.get(managementAddress(id, kube.namespace)).status(3000);
    } catch (err) {
      logger.warn({ volume: id, err: (err as Error).message }, 'replica node not ready, but the controller does not answer: not replacing');
      return undefined;
    }
    const mode = (index: number): string | undefined => view.replicas.find((x) => x.address === replicaAddress(id, index, kube.namespace))?.mode;
    if (view.replicas.some((r) => r.mode === 'WO' || r.rebuild)) return undefined;
    const candidate = overdue.find((r) => mode(r.index) !== 'RW');
    if (!candidate) return undefined;
    const quorum = Math.floor(volume.spec.replicas.length / 2) + 1;
    const others = volume.spec.replicas.filter((r) => r.index !== candidate.index && mode(r.index) === 'RW').length;
    if (others < quorum) {
      logger.warn({ volume: id, replica: candidate.index, node: candidate.node, rw: others, quorum }, 'replica node not ready, but replacing it would leave fewer RW replicas than a quorum');
      return undefined;
    }
    logger.warn({ volume: id, replica: candidate.index, node: candidate.node, graceMs: grace }, 'replica node not ready past the grace period: replacing the replica');
    return this.replace(volume, candidate.index, [...nodes.values()], all);
  }

  /**
   * A replica whose node object is gone (the node was removed from the
   * cluster) cannot come back: its data went with the disk; one whose node
   * stayed NotReady too long is given up the same way. A new replica on
   * another node takes its place in the spec; the controller adds it (it
   * rebuilds from the others, DESIGN.md) after dropping the lost one.
   */
  private async replace(volume: TriremeVolume, index: number, nodes: V1Node[], all: TriremeVolume[]): Promise<TriremeVolume | undefined> {
    const { kube, logger } = this.options;
    const id = volume.metadata.name;
    const keep = new Set(volume.spec.replicas.filter((r) => r.index !== index).map((r) => r.node));
    const [node] = pickNodes(nodes, all, 1, keep, this.options.nodeSelector ?? {});
    if (!node) {
      logger.warn({ volume: id, replica: index }, 'replica lost and no node to replace it on');
      return undefined;
    }
    const updated = await retryOnConflict(
      () => kube.getVolume(id),
      (cur) => {
        if (!cur.spec.replicas.some((r) => r.index === index)) return Promise.resolve(cur);
        const next = cur.spec.nextReplicaIndex;
        const replicas = [...cur.spec.replicas.filter((r) => r.index !== index), { index: next, node }];
        return kube.replaceVolume({ ...cur, spec: { ...cur.spec, replicas, nextReplicaIndex: next + 1 } });
      },
    );
    if (!updated) return undefined;
    await ensureWorkloads(kube, updated, this.options.settings);
    const added = updated.spec.replicas[updated.spec.replicas.length - 1];
    const control = this.controls.get(managementAddress(id, kube.namespace));
    try {
      // Drop first, then add: a set change reopens the engine, which needs a quorum of the new set among replicas
      // that hold the data. With the lost one still in it (and the newcomer empty) that quorum may not exist.
      await control.removeReplica(replicaAddress(id, index, kube.namespace)).catch((err: unknown) => {
        if (errorCode(err) !== 'ERR_REPLICA_NOT_FOUND' && errorCode(err) !== 'ERR_NOT_FOUND') throw err;
      });
      await control.addReplica(replicaAddress(id, added.index, kube.namespace));
    } catch (err) {
      // The controller Deployment now names the new set; a restarted controller opens it and rebuilds the newcomer.
      logger.warn({ err, volume: id }, 'controller did not take the replica change; its restart will');
    }
    await removeReplicaWorkload(kube, id, index);
    await retryOnConflict(
      () => kube.getVolume(id),
      (cur) => kube.replaceVolumeStatus({ ...cur, status: { ...cur.status, replacements: (cur.status?.replacements ?? 0) + 1 } }),
    );
    logger.info({ volume: id, lost: index, replica: added.index, node }, 'replica replaced');
    return updated;
  }

  private async updateStatus(volume: TriremeVolume, nodes: Map<string, V1Node>): Promise<void> {
    const { kube } = this.options;
    const id = volume.metadata.name;
    const control = this.controls.get(managementAddress(id, kube.namespace));
    let view: VolumeStatusView | undefined;
    let snapshots: TriremeVolumeStatus['snapshots'];
    let error = '';
    const populating = isPopulating(volume);
    if (!populating) {
      try {
        view = await control.status(3000);
        snapshots = (await control.listSnapshots()).map((s) => ({ name: s.name, createdAt: s.createdAt, sizeBytes: s.sizeBytes }));
      } catch (err) {
        error = (err as Error).message;
      }
    }
    const copied = `populating: copying ${volume.spec.clone?.volume ?? ''}@${volume.spec.clone?.snapshot ?? ''}, no controller until it is whole`;
    const status = populating ? { ...statusFrom(volume, undefined, undefined, '', nodes), message: copied } : statusFrom(volume, view, snapshots, error, nodes);
    await retryOnConflict(
      () => kube.getVolume(id),
      // Rebuild details are replaced, not merged: a finished rebuild must not linger; the replacement count and the
      // phase carry over (the phase from the resource as read now: CreateVolume may have just marked a clone Ready).
      (cur) => {
        const phase = cur.status?.phase ?? (cur.spec.clone ? 'Populating' : 'Ready');
        const base = { replacements: cur.status?.replacements ?? 0, ...status, phase };
        return kube.replaceVolumeStatus({ ...cur, status: { ...base, observedGeneration: cur.metadata.generation ?? 0, lastReconciled: new Date().toISOString() } });
      },
    ).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    for (const a of this.aborts) a.abort();
    await this.running;
    this.controls.closeAll();
  }
}

/** What `kubectl get triremevolumes` shows: state, replica modes, rebuild progress, snapshots. */
export function statusFrom(volume: TriremeVolume, view: VolumeStatusView | undefined, snapshots: TriremeVolumeStatus['snapshots'], error: string, nodes: Map<string, V1Node>): TriremeVolumeStatus {
  const ns = volume.metadata.namespace ?? '';
  const replicas = volume.spec.replicas.map((r) => {
    const address = replicaAddress(volume.metadata.name, r.index, ns);
    const mode = view?.replicas.find((x) => x.address === address)?.mode ?? (nodes.has(r.node) ? 'unknown' : 'lost');
    return { index: r.index, node: r.node, address, mode };
  });
  if (!view) return { state: 'pending', message: `controller not answering: ${error}`, replicas, ...(snapshots ? { snapshots } : {}) };
  const rebuilding = view.replicas.find((r) => r.rebuild);
  const rebuild = rebuilding?.rebuild
    ? {
        address: rebuilding.address,
        kind: rebuilding.rebuild.kind,
        bytesDone: rebuilding.rebuild.bytesDone,
        bytesTotal: rebuilding.rebuild.bytesTotal,
        percent: rebuilding.rebuild.bytesTotal > 0 ? Math.floor((100 * rebuilding.rebuild.bytesDone) / rebuilding.rebuild.bytesTotal) : 0,
      }
    : undefined;
  const state = view.state === 'offline' ? 'faulted' : view.state;
  const modes = replicas.map((r) => `r${r.index}@${r.node} ${r.mode}`).join(', ');
  return { state, message: `${view.state}: ${modes}`, replicas, ...(rebuild ? { rebuild, rebuildPercent: rebuild.percent } : { rebuildPercent: 100 }), snapshots: snapshots ?? [] };
}
