import type { AccessModeName, VolumeCapability } from './types';

/**
 * Access modes a Trireme volume supports: one iSCSI initiator (one node) at a
 * time, since ext4 and xfs are not cluster filesystems; any number of pods on
 * that node may share it (SINGLE_NODE_MULTI_WRITER, via bind mounts).
 */
export const SUPPORTED_ACCESS_MODES: readonly AccessModeName[] = [
  'SINGLE_NODE_WRITER',
  'SINGLE_NODE_READER_ONLY',
  'SINGLE_NODE_SINGLE_WRITER',
  'SINGLE_NODE_MULTI_WRITER',
];

export const CSI_FS_TYPES = ['ext4', 'xfs'] as const;
export const DEFAULT_FS_TYPE = 'ext4';

/** Why a capability cannot be honoured, or undefined when it can. */
export function unsupportedCapabilityReason(capability: VolumeCapability): string | undefined {
  const mode = capability.access_mode?.mode ?? 'UNKNOWN';
  if (!SUPPORTED_ACCESS_MODES.includes(mode)) return `access mode ${mode} is not supported (supported: ${SUPPORTED_ACCESS_MODES.join(', ')})`;
  if (capability.access_type === 'block' || capability.block) return undefined;
  if (capability.access_type === 'mount' || capability.mount) {
    const fsType = capability.mount?.fs_type ?? '';
    if (fsType !== '' && !(CSI_FS_TYPES as readonly string[]).includes(fsType)) return `fs_type ${fsType} is not supported (supported: ${CSI_FS_TYPES.join(', ')})`;
    return undefined;
  }
  return 'access_type must be block or mount';
}

export function isBlockCapability(capability: VolumeCapability): boolean {
  return capability.access_type === 'block' || Boolean(capability.block);
}
