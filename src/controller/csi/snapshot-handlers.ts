import { alreadyExists, notFound, type CsiRequest, type StringMap } from '../../common/csi';
import { orchestrate, snapshotToCsi } from './mapping';
import type { Orchestrator } from './orchestrator';
import { paginate } from './pagination';
import { checkSnapshotParameters } from './parameters';

/** CreateSnapshot: idempotent by name; the same name for another source is ALREADY_EXISTS. */
export async function createSnapshot(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const name = request.name as string;
  const sourceVolumeId = request.source_volume_id as string;
  checkSnapshotParameters(request.parameters as StringMap);
  const existing = await orchestrate(() => orchestrator.findSnapshotByName(name));
  if (existing) {
    if (existing.sourceVolumeId !== sourceVolumeId) throw alreadyExists(`snapshot ${name} exists for volume ${existing.sourceVolumeId}, not ${sourceVolumeId}`);
    return { snapshot: snapshotToCsi(existing) };
  }
  const source = await orchestrate(() => orchestrator.getVolume(sourceVolumeId));
  if (!source) throw notFound(`source volume ${sourceVolumeId} does not exist`);
  const snapshot = await orchestrate(() => orchestrator.createSnapshot(name, sourceVolumeId));
  return { snapshot: snapshotToCsi(snapshot) };
}

/** DeleteSnapshot: a snapshot that does not exist counts as deleted. */
export async function deleteSnapshot(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  try {
    await orchestrate(() => orchestrator.deleteSnapshot(request.snapshot_id as string));
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_CSI_NOT_FOUND') return {};
    throw err;
  }
  return {};
}

/** ListSnapshots, filtered by snapshot id or source volume; an unknown id gives an empty list (spec). */
export async function listSnapshots(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const snapshotId = (request.snapshot_id ?? '') as string;
  const sourceVolumeId = (request.source_volume_id ?? '') as string;
  const all = await orchestrate(() => orchestrator.listSnapshots());
  const matching = all.filter((s) => (!snapshotId || s.snapshotId === snapshotId) && (!sourceVolumeId || s.sourceVolumeId === sourceVolumeId));
  const { page, nextToken } = paginate(matching, request.max_entries as number, request.starting_token as string);
  return { entries: page.map((s) => ({ snapshot: snapshotToCsi(s) })), next_token: nextToken };
}
