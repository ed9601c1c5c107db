import { TriremeError, errorCode } from '../../../common/errors';
import type { Logger } from '../../../common/logger';
import { ReplicaControlClient } from '../../../replica/client/control-client';
import { OrchestratorError } from '../../csi/orchestrator';
import { populateClone, resetCloneTargets } from '../clone';
import { isNotFound, retryOnConflict, type KubeClient } from './kube-client';
import { replicaAddress } from './names';
import { isPopulating, type TriremeVolume } from './types';
import type { VolumeControlClient } from './volume-control-client';

/**
 * Turns a replica address as the cluster names it (`<volume>-r<i>.<ns>.svc:9700`,
 * or whatever a controller reports) into one this process can dial. In a
 * cluster the CSI controller pod resolves Service names itself: the identity.
 */
export type ReplicaResolver = (address: string) => string;

export interface PopulationDeps {
  readonly kube: KubeClient;
  /** The management API of a volume's controller, by volume id. */
  readonly control: (volumeId: string) => VolumeControlClient;
  readonly resolve: ReplicaResolver;
  readonly logger: Logger;
  /** How long the new replicas' pods may take to answer (scheduling, image pull). */
  readonly reachableTimeoutMs: number;
}

/** The snapshot cut on the source of a volume clone: named after the clone, so a retry finds the one a crashed attempt cut. */
export function temporarySnapshotName(volumeId: string): string {
  return `clone-for-${volumeId}`;
}

/**
 * Fills a clone's replicas from its source, then marks it Ready. Runs from the
 * start every time: after a crash of the process that ran an earlier attempt,
 * whatever the targets hold is emptied first (never completed, never served).
 * For a volume source, the snapshot taken for the copy is deleted before the
 * phase turns Ready: a crash in between redoes the copy from a fresh snapshot
 * rather than leaving one behind on the source.
 */
export async function populate(deps: PopulationDeps, volume: TriremeVolume): Promise<TriremeVolume> {
  const clone = volume.spec.clone;
  if (!clone || !isPopulating(volume)) return volume;
  const id = volume.metadata.name;
  const logger = deps.logger.child({ volume: id });
  const gone = new OrchestratorError(clone.kind === 'snapshot' ? 'ERR_SNAPSHOT_NOT_FOUND' : 'ERR_VOLUME_NOT_FOUND', `source ${clone.kind} ${clone.sourceId} no longer exists`);
  const from = await deps.kube.getVolume(clone.volume).catch((err: unknown) => (isNotFound(err) ? undefined : Promise.reject(unavailable('the Kubernetes API', err))));
  if (!from || from.metadata.deletionTimestamp) throw gone;
  const source = deps.control(clone.volume);
  const snapshots = await source.listSnapshots().catch((err: unknown) => Promise.reject(unavailable(`the controller of source volume ${clone.volume}`, err)));
  if (!snapshots.some((s) => s.name === clone.snapshot)) {
    if (clone.kind === 'snapshot') throw gone;
    await source.createSnapshot(clone.snapshot).catch((err: unknown) => {
      if (errorCode(err) !== 'ERR_ALREADY_EXISTS') throw unavailable(`a snapshot of ${clone.volume}`, err);
    });
  }
  // Only RW replicas hold every write up to the snapshot (DESIGN.md invariant 7); a rebuilding one may not.
  const view = await source.status(3000).catch((err: unknown) => Promise.reject(unavailable(`the controller of source volume ${clone.volume}`, err)));
  const holders = view.replicas.filter((r) => r.mode === 'RW').map((r) => deps.resolve(r.address));
  if (holders.length === 0) throw new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `source volume ${clone.volume} has no replica in RW mode to copy from`);
  const targets = volume.spec.replicas.map((r) => deps.resolve(replicaAddress(id, r.index, deps.kube.namespace)));
  await waitReachable(targets, deps.reachableTimeoutMs);
  await resetCloneTargets(targets, logger);
  await populateClone({ volume: clone.volume, snapshot: clone.snapshot, replicas: holders }, targets, logger);
  if (clone.kind === 'volume') await dropSnapshot(source, clone.snapshot);
  const ready = await retryOnConflict(
    () => deps.kube.getVolume(id),
    (cur) => deps.kube.replaceVolumeStatus({ ...cur, status: { ...cur.status, phase: 'Ready', message: `copied from ${clone.volume}@${clone.snapshot}` } }),
  );
  if (!ready) throw new OrchestratorError('ERR_VOLUME_NOT_FOUND', `volume ${id} was deleted while it was being copied`);
  logger.info({ source: clone.sourceId }, 'clone ready');
  return ready;
}

/**
 * Deletes the snapshot a volume clone cut on its source, if it is still there:
 * after the copy, and when a clone is deleted before its copy finished.
 */
export async function dropSnapshot(source: VolumeControlClient, name: string): Promise<void> {
  await source.deleteSnapshot(name).catch((err: unknown) => {
    const code = errorCode(err);
    if (code !== 'ERR_NOT_FOUND' && code !== 'ERR_SNAPSHOT_NOT_FOUND') throw err;
  });
}

/** Waits until every replica answers its control API (its pod scheduled, started and listening). */
async function waitReachable(addresses: readonly string[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (const address of addresses) {
    let last: unknown;
    for (;;) {
      const client = new ReplicaControlClient(address, { deadlineMs: 2000 });
      try {
        await client.status();
        break;
      } catch (err) {
        last = err;
      } finally {
        client.close();
      }
      if (Date.now() >= deadline) {
        throw new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `clone replica ${address} did not answer within ${timeoutMs} ms: ${(last as Error).message}`, { cause: last });
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

function unavailable(what: string, err: unknown): Error {
  if (err instanceof TriremeError && err.code.startsWith('ERR_ORCHESTRATOR')) return err;
  return new OrchestratorError('ERR_ORCHESTRATOR_UNAVAILABLE', `${what} is not answering: ${(err as Error).message}`, { cause: err });
}
