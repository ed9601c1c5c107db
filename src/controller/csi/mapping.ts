import { status } from '@grpc/grpc-js';
import { CsiError, VOLUME_CONTEXT_KEYS, alreadyExists, failedPrecondition, invalidArgument, notFound, outOfRange, resourceExhausted, unavailable, type Snapshot, type Volume, type VolumeCondition, type VolumeContentSource } from '../../common/csi';
import { errorCode } from '../../common/errors';
import { ORCHESTRATOR_ERRORS, type ContentSource, type OrchestratedSnapshot, type OrchestratedVolume } from './orchestrator';


/** The one place orchestrator failures become the CSI spec's codes. */
export function mapOrchestratorError(err: unknown): unknown {
  if (err instanceof CsiError) return err;
  const message = err instanceof Error ? err.message : String(err);
  switch (errorCode(err)) {
    case ORCHESTRATOR_ERRORS.volumeNotFound:
    case ORCHESTRATOR_ERRORS.snapshotNotFound:
      return notFound(message);
    case ORCHESTRATOR_ERRORS.insufficientCapacity:
      return resourceExhausted(message);
    case ORCHESTRATOR_ERRORS.volumeHasSnapshots:
      return failedPrecondition(message);
    case 'ERR_ALREADY_EXISTS':
      return alreadyExists(message);
    case ORCHESTRATOR_ERRORS.unavailable:
    case 'ERR_UNAVAILABLE':
      return unavailable(message);
    // An orchestrator that cannot do what was asked (a clone source it has no
    // copy path for) says so; the CO must not retry.
    case 'ERR_UNIMPLEMENTED':
      return new CsiError(status.UNIMPLEMENTED, message);
    case 'ERR_INVALID_ARGUMENT':
      return invalidArgument(message);
    // A clone asked smaller than its source (CSI CreateVolume: OUT_OF_RANGE).
    case 'ERR_OUT_OF_RANGE':
      return outOfRange(message);
    default:
      return err;
  }
}

/** Runs an orchestrator call with its failures mapped. */
export async function orchestrate<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw mapOrchestratorError(err);
  }
}

export function contentSourceToCsi(source: ContentSource | undefined): VolumeContentSource | null {
  if (!source) return null;
  return source.kind === 'snapshot' ? { snapshot: { snapshot_id: source.snapshotId } } : { volume: { volume_id: source.volumeId } };
}

export function sameContentSource(a: ContentSource | undefined, b: ContentSource | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.kind === 'snapshot' && b.kind === 'snapshot') return a.snapshotId === b.snapshotId;
  if (a.kind === 'volume' && b.kind === 'volume') return a.volumeId === b.volumeId;
  return false;
}

/** What the node needs to reach the volume. CHAP never goes here: it travels as node-stage secrets. */
export function volumeContext(volume: OrchestratedVolume): Record<string, string> {
  return {
    [VOLUME_CONTEXT_KEYS.portal]: volume.portal,
    [VOLUME_CONTEXT_KEYS.iqn]: volume.iqn,
    [VOLUME_CONTEXT_KEYS.lun]: String(volume.lun),
    [VOLUME_CONTEXT_KEYS.fsType]: volume.params.fsType,
    [VOLUME_CONTEXT_KEYS.replicaCount]: String(volume.params.replicaCount),
  };
}

export function volumeToCsi(volume: OrchestratedVolume): Volume {
  return {
    capacity_bytes: volume.sizeBytes,
    volume_id: volume.volumeId,
    volume_context: volumeContext(volume),
    content_source: contentSourceToCsi(volume.contentSource),
    accessible_topology: [],
  };
}

/** CSI VOLUME_CONDITION: anything but healthy is abnormal, with the orchestrator's detail. */
export function volumeCondition(volume: OrchestratedVolume): VolumeCondition {
  const { state, message } = volume.health;
  return { abnormal: state !== 'healthy', message: message.startsWith(state) ? message : `${state}: ${message}` };
}

export function snapshotToCsi(snapshot: OrchestratedSnapshot): Snapshot {
  const ms = snapshot.createdAt.getTime();
  return {
    size_bytes: snapshot.sizeBytes,
    snapshot_id: snapshot.snapshotId,
    source_volume_id: snapshot.sourceVolumeId,
    creation_time: { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1_000_000 },
    ready_to_use: snapshot.readyToUse,
  };
}
