import { CSI_FS_TYPES, DEFAULT_FS_TYPE, invalidArgument, type StringMap } from '../../common/csi';
import type { VolumeParameters } from './orchestrator';

/**
 * StorageClass parameters (README "StorageClass parameters"):
 * - `replicaCount`: replicas per volume, 1 to 5 (default 3: quorum 2 of 3).
 * - `fsType`: ext4 or xfs (default ext4), used when the claim names none.
 * - `chap`: "true" to require CHAP logins to the volume's target (default "false").
 * Keys under `csi.storage.k8s.io/` are the provisioner's own metadata and are
 * ignored; any other key is refused, so a typo does not silently give defaults.
 */
export const DEFAULT_REPLICA_COUNT = 3;
export const MAX_REPLICA_COUNT = 5;
const PROVISIONER_PREFIX = 'csi.storage.k8s.io/';

export function parseVolumeParameters(params: StringMap | null | undefined): VolumeParameters {
  const input = params ?? {};
  for (const key of Object.keys(input)) {
    if (!['replicaCount', 'fsType', 'chap'].includes(key) && !key.startsWith(PROVISIONER_PREFIX)) {
      throw invalidArgument(`parameters: unknown key "${key}" (known: replicaCount, fsType, chap)`);
    }
  }
  const replicaText = input.replicaCount ?? String(DEFAULT_REPLICA_COUNT);
  const replicaCount = Number(replicaText);
  if (!/^\d+$/.test(replicaText) || replicaCount < 1 || replicaCount > MAX_REPLICA_COUNT) {
    throw invalidArgument(`parameters.replicaCount must be an integer from 1 to ${MAX_REPLICA_COUNT}, got "${replicaText}"`);
  }
  const fsType = input.fsType ?? DEFAULT_FS_TYPE;
  if (!(CSI_FS_TYPES as readonly string[]).includes(fsType)) throw invalidArgument(`parameters.fsType must be one of ${CSI_FS_TYPES.join(', ')}, got "${fsType}"`);
  const chapText = input.chap ?? 'false';
  if (chapText !== 'true' && chapText !== 'false') throw invalidArgument(`parameters.chap must be "true" or "false", got "${chapText}"`);
  return { replicaCount, fsType: fsType as VolumeParameters['fsType'], chap: chapText === 'true' };
}

export function sameParameters(a: VolumeParameters, b: VolumeParameters): boolean {
  return a.replicaCount === b.replicaCount && a.fsType === b.fsType && a.chap === b.chap;
}

/** Snapshot classes take no parameters of their own. */
export function checkSnapshotParameters(params: StringMap | null | undefined): void {
  for (const key of Object.keys(params ?? {})) {
    if (!key.startsWith(PROVISIONER_PREFIX)) throw invalidArgument(`parameters: unknown snapshot parameter "${key}"`);
  }
}
