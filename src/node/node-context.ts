import { CHAP_SECRET_KEYS, DEFAULT_FS_TYPE, invalidArgument, VOLUME_CONTEXT_KEYS, isBlockCapability, unsupportedCapabilityReason, type StringMap, type VolumeCapability } from '../common/csi';
import type { Logger } from '../common/logger';
import type { ChapSecrets, DeviceAcquirer, VolumeTarget } from './device-acquirer';
import type { HostOps } from './host-ops';
import type { MountEntry, MountTable } from './mount-table';
import type { StageStateStore } from './stage-state';

/** Everything the node RPCs share. */
export interface NodeContext {
  readonly host: HostOps;
  readonly mounts: MountTable;
  readonly acquirer: DeviceAcquirer;
  readonly states: StageStateStore;
  readonly deviceTimeoutMs: number;
  readonly logger: Logger;
}

export const CONTEXT_PORTAL = VOLUME_CONTEXT_KEYS.portal;
export const CONTEXT_IQN = VOLUME_CONTEXT_KEYS.iqn;
export const CONTEXT_LUN = VOLUME_CONTEXT_KEYS.lun;
export const CONTEXT_FS_TYPE = VOLUME_CONTEXT_KEYS.fsType;

export const SECRET_CHAP_USER = CHAP_SECRET_KEYS.user;
export const SECRET_CHAP_SECRET = CHAP_SECRET_KEYS.secret;
export const SECRET_CHAP_MUTUAL_USER = CHAP_SECRET_KEYS.mutualUser;
export const SECRET_CHAP_MUTUAL_SECRET = CHAP_SECRET_KEYS.mutualSecret;

export function targetFromContext(context: StringMap): VolumeTarget {
  const portal = context[CONTEXT_PORTAL] ?? '';
  const iqn = context[CONTEXT_IQN] ?? '';
  const lunText = context[CONTEXT_LUN] ?? '0';
  if (!/^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):\d{1,5}$/.test(portal)) throw invalidArgument(`volume_context.${CONTEXT_PORTAL} must be HOST:PORT, got "${portal}"`);
  // RFC 7143 §4.2.7.1: iqn.YYYY-MM.reversed-domain[:unique] or eui./naa. names.
  if (!/^(iqn\.\d{4}-\d{2}\.[^\s]+|eui\.[0-9A-Fa-f]{16}|naa\.[0-9A-Fa-f]{16,32})$/.test(iqn)) throw invalidArgument(`volume_context.${CONTEXT_IQN} is not an iSCSI name: "${iqn}"`);
  const lun = Number(lunText);
  if (!/^\d+$/.test(lunText) || lun > 16383) throw invalidArgument(`volume_context.${CONTEXT_LUN} must be 0-16383, got "${lunText}"`);
  return { portal, iqn, lun };
}

export function chapFromSecrets(secrets: StringMap): ChapSecrets | undefined {
  const user = secrets[SECRET_CHAP_USER];
  const secret = secrets[SECRET_CHAP_SECRET];
  if (!user && !secret) return undefined;
  if (!user || !secret) throw invalidArgument(`node stage secrets must hold both ${SECRET_CHAP_USER} and ${SECRET_CHAP_SECRET}`);
  const mutualUser = secrets[SECRET_CHAP_MUTUAL_USER];
  const mutualSecret = secrets[SECRET_CHAP_MUTUAL_SECRET];
  if (Boolean(mutualUser) !== Boolean(mutualSecret)) throw invalidArgument(`node stage secrets must hold both ${SECRET_CHAP_MUTUAL_USER} and ${SECRET_CHAP_MUTUAL_SECRET}, or neither`);
  return { user, secret, mutualUser, mutualSecret };
}

/** Checks a capability and returns what staging needs from it. */
export function parseCapability(capability: VolumeCapability, context: StringMap): { block: boolean; fsType: string; mountFlags: string[] } {
  const reason = unsupportedCapabilityReason(capability);
  if (reason) throw invalidArgument(`volume_capability: ${reason}`);
  if (isBlockCapability(capability)) return { block: true, fsType: '', mountFlags: [] };
  const fsType = capability.mount?.fs_type || context[CONTEXT_FS_TYPE] || DEFAULT_FS_TYPE;
  const mountFlags = capability.mount?.mount_flags ?? [];
  // A flag is passed to mount -o as one comma-separated list: a comma inside one
  // flag would smuggle in another option.
  for (const flag of mountFlags) if (!/^[A-Za-z0-9_=.:/+-]+$/.test(flag)) throw invalidArgument(`mount flag "${flag}" has characters mount options do not use`);
  return { block: false, fsType, mountFlags };
}

/** Whether a mount entry is a bind of the device node itself (a published raw block volume). */
export function isDeviceNodeBind(entry: MountEntry, devicePath: string): boolean {
  return devicePath.startsWith('/dev/') && entry.root === devicePath.slice('/dev'.length) && (entry.fsType === 'devtmpfs' || entry.fsType === 'tmpfs');
}

/** Unmounts every mount stacked on `path` (bounded: a mount that will not go is an error). */
export async function unmountAll(ctx: NodeContext, path: string): Promise<void> {
  for (let i = 0; i < 8; i++) {
    if (!(await ctx.mounts.at(path))) return;
    await ctx.host.unmount(path);
  }
  throw new Error(`${path} is still mounted after 8 unmounts`);
}
