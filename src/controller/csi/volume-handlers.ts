import {
  alreadyExists,
  invalidArgument,
  notFound,
  outOfRange,
  unsupportedCapabilityReason,
  isBlockCapability,
  type CapacityRange,
  type CsiRequest,
  type StringMap,
  type VolumeCapability,
  type VolumeContentSource,
} from '../../common/csi';
import { orchestrate, sameContentSource, volumeCondition, volumeContext, volumeToCsi } from './mapping';
import type { ContentSource, OrchestratedVolume, Orchestrator } from './orchestrator';
import { paginate } from './pagination';
import { parseVolumeParameters, sameParameters } from './parameters';
import { sizeForRange, sizeSatisfies } from './sizing';

function checkCapabilities(capabilities: VolumeCapability[]): void {
  for (const capability of capabilities) {
    const reason = unsupportedCapabilityReason(capability);
    if (reason) throw invalidArgument(`volume_capabilities: ${reason}`);
  }
}

function parseContentSource(source: VolumeContentSource | null | undefined): ContentSource | undefined {
  if (!source || !source.type) return undefined;
  if (source.type === 'snapshot') {
    const snapshotId = source.snapshot?.snapshot_id ?? '';
    if (!snapshotId) throw invalidArgument('volume_content_source.snapshot.snapshot_id is required');
    return { kind: 'snapshot', snapshotId };
  }
  const volumeId = source.volume?.volume_id ?? '';
  if (!volumeId) throw invalidArgument('volume_content_source.volume.volume_id is required');
  return { kind: 'volume', volumeId };
}

/** The size of a clone's source; NOT_FOUND when it does not exist (CSI CreateVolume errors). */
async function sourceSize(orchestrator: Orchestrator, source: ContentSource | undefined): Promise<number> {
  if (!source) return 0;
  if (source.kind === 'snapshot') {
    const snapshot = await orchestrate(() => orchestrator.getSnapshot(source.snapshotId));
    if (!snapshot) throw notFound(`source snapshot ${source.snapshotId} does not exist`);
    return snapshot.sizeBytes;
  }
  const volume = await orchestrate(() => orchestrator.getVolume(source.volumeId));
  if (!volume) throw notFound(`source volume ${source.volumeId} does not exist`);
  return volume.sizeBytes;
}

/**
 * CreateVolume: idempotent by name. A repeat returns the same volume when its
 * size fits the requested range and its parameters and source are the same;
 * otherwise ALREADY_EXISTS, as the spec requires.
 */
export async function createVolume(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const name = request.name as string;
  checkCapabilities(request.volume_capabilities as VolumeCapability[]);
  const params = parseVolumeParameters(request.parameters as StringMap);
  const range = request.capacity_range as CapacityRange | null;
  const source = parseContentSource(request.volume_content_source as VolumeContentSource | null);

  const existing = await orchestrate(() => orchestrator.findVolumeByName(name));
  if (existing) {
    if (!sizeSatisfies(existing.sizeBytes, range)) throw alreadyExists(`volume ${name} exists with ${existing.sizeBytes} bytes, outside the requested capacity range`);
    if (!sameParameters(existing.params, params)) throw alreadyExists(`volume ${name} exists with different parameters`);
    if (!sameContentSource(existing.contentSource, source)) throw alreadyExists(`volume ${name} exists with a different content source`);
    return { volume: volumeToCsi(existing) };
  }

  const minimum = await sourceSize(orchestrator, source);
  const size = sizeForRange(range, minimum);
  const capacity = await orchestrate(() => orchestrator.capacity(params));
  if (capacity.maximumVolumeBytes !== undefined && size > capacity.maximumVolumeBytes) {
    throw outOfRange(`${size} bytes is above the largest volume this cluster can create (${capacity.maximumVolumeBytes} bytes)`);
  }
  const created = await orchestrate(() => orchestrator.createVolume(name, size, params, source));
  return { volume: volumeToCsi(created) };
}

/** DeleteVolume: a volume that does not exist counts as deleted (spec: NOT_FOUND means success). */
export async function deleteVolume(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const volumeId = request.volume_id as string;
  try {
    await orchestrate(() => orchestrator.deleteVolume(volumeId));
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_CSI_NOT_FOUND') return {};
    throw err;
  }
  return {};
}

async function mustGetVolume(orchestrator: Orchestrator, volumeId: string): Promise<OrchestratedVolume> {
  const volume = await orchestrate(() => orchestrator.getVolume(volumeId));
  if (!volume) throw notFound(`volume ${volumeId} does not exist`);
  return volume;
}

/** ValidateVolumeCapabilities: `confirmed` only when every capability, the context and the parameters match. */
export async function validateVolumeCapabilities(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const volume = await mustGetVolume(orchestrator, request.volume_id as string);
  const capabilities = request.volume_capabilities as VolumeCapability[];
  for (const capability of capabilities) {
    const reason = unsupportedCapabilityReason(capability);
    if (reason) return { message: reason };
  }
  const context = (request.volume_context ?? {}) as StringMap;
  const actual = volumeContext(volume);
  for (const [key, value] of Object.entries(context)) {
    if (actual[key] !== value) return { message: `volume_context.${key} does not match the volume` };
  }
  const params = (request.parameters ?? {}) as StringMap;
  if (Object.keys(params).length > 0) {
    let parsed;
    try {
      parsed = parseVolumeParameters(params);
    } catch (err) {
      return { message: (err as Error).message };
    }
    if (!sameParameters(parsed, volume.params)) return { message: 'parameters do not match the volume' };
  }
  return { confirmed: { volume_context: context, volume_capabilities: capabilities, parameters: params } };
}

export async function listVolumes(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const volumes = await orchestrate(() => orchestrator.listVolumes());
  const { page, nextToken } = paginate(volumes, request.max_entries as number, request.starting_token as string);
  return {
    entries: page.map((v) => ({ volume: volumeToCsi(v), status: { published_node_ids: [], volume_condition: volumeCondition(v) } })),
    next_token: nextToken,
  };
}

export async function controllerGetVolume(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const volume = await mustGetVolume(orchestrator, request.volume_id as string);
  return { volume: volumeToCsi(volume), status: { published_node_ids: [], volume_condition: volumeCondition(volume) } };
}

/**
 * ControllerExpandVolume: online; never shrinks (a smaller request returns the
 * current size, which makes repeats idempotent). Filesystem volumes need the
 * node to grow the filesystem afterwards; raw block volumes do not.
 */
export async function controllerExpandVolume(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  const volume = await mustGetVolume(orchestrator, request.volume_id as string);
  const range = request.capacity_range as CapacityRange;
  const limit = range.limit_bytes ?? 0;
  if (limit > 0 && volume.sizeBytes > limit) throw outOfRange(`volume is already ${volume.sizeBytes} bytes, above limit_bytes ${limit}; volumes never shrink`);
  const capability = request.volume_capability as VolumeCapability | null;
  const nodeExpansionRequired = !(capability && isBlockCapability(capability));
  if (sizeSatisfies(volume.sizeBytes, range)) return { capacity_bytes: volume.sizeBytes, node_expansion_required: nodeExpansionRequired };
  const size = sizeForRange(range, volume.sizeBytes);
  const capacity = await orchestrate(() => orchestrator.capacity(volume.params));
  if (capacity.maximumVolumeBytes !== undefined && size > capacity.maximumVolumeBytes) {
    throw outOfRange(`${size} bytes is above the largest volume this cluster can serve (${capacity.maximumVolumeBytes} bytes)`);
  }
  const grown = await orchestrate(() => orchestrator.expandVolume(volume.volumeId, size));
  return { capacity_bytes: grown.sizeBytes, node_expansion_required: nodeExpansionRequired };
}

export async function getCapacity(orchestrator: Orchestrator, request: CsiRequest): Promise<object> {
  checkCapabilities((request.volume_capabilities ?? []) as VolumeCapability[]);
  const capacity = await orchestrate(() => orchestrator.capacity(parseVolumeParameters(request.parameters as StringMap)));
  return {
    available_capacity: capacity.availableBytes,
    maximum_volume_size: capacity.maximumVolumeBytes === undefined ? null : { value: capacity.maximumVolumeBytes },
    minimum_volume_size: capacity.minimumVolumeBytes === undefined ? null : { value: capacity.minimumVolumeBytes },
  };
}

