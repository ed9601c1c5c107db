import { status } from '@grpc/grpc-js';
import { alreadyExists, CsiError, failedPrecondition, notFound, type CsiRequest, type StringMap, type VolumeCapability } from '../common/csi';
import { TriremeError } from '../common/errors';
import { isSupportedFsType, type BlockDeviceInfo } from './host-ops';
import { chapFromSecrets, isDeviceNodeBind, parseCapability, targetFromContext, unmountAll, type NodeContext } from './node-context';
import type { StagedVolume } from './stage-state';

/**
 * NodeStageVolume (CSI §"NodeStageVolume"): attach the device, create a
 * filesystem only when blkid finds none, mount it at the staging path. Every
 * step checks the state it would create first, so a call repeated after a crash
 * at any point finishes the job instead of failing or doing it twice.
 */
export async function nodeStageVolume(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const volumeId = request.volume_id as string;
  const stagingPath = request.staging_target_path as string;
  const context = (request.volume_context ?? {}) as StringMap;
  const { block, fsType, mountFlags } = parseCapability(request.volume_capability as VolumeCapability, context);
  const target = targetFromContext(context);
  const chap = chapFromSecrets((request.secrets ?? {}) as StringMap);
  const log = ctx.logger.child({ volume: volumeId });

  const previous = await ctx.states.load(volumeId);
  if (previous && previous.stagingPath !== stagingPath) throw alreadyExists(`volume ${volumeId} is already staged at ${previous.stagingPath}`);
  const state: StagedVolume = { volumeId, target, stagingPath, block };
  await ctx.states.save(state);

  let device: BlockDeviceInfo;
  try {
    const link = await ctx.acquirer.attach(target, chap);
    device = await ctx.host.waitForBlockDevice(link, ctx.deviceTimeoutMs);
  } catch (err) {
    // CSI NodeStageVolume "Volume does not exist": the portal does not offer
    // the target, or the login produced no device for the LUN.
    if (err instanceof TriremeError && (err.code === 'ERR_DEVICE_TIMEOUT' || err.code === 'ERR_TARGET_NOT_OFFERED')) throw notFound(`volume ${volumeId}: ${err.message}`);
    // Wrong CHAP secrets are the caller's to fix, not an internal fault.
    if (err instanceof TriremeError && err.code === 'ERR_ISCSI_AUTH_FAILED') throw new CsiError(status.UNAUTHENTICATED, `volume ${volumeId}: ${err.message}`);
    throw err;
  }
  if (block) {
    log.info({ device: device.path }, 'volume staged (block)');
    return {};
  }

  const existing = await ctx.mounts.at(stagingPath);
  if (existing) {
    if (existing.majorMinor !== device.majorMinor) throw alreadyExists(`staging path ${stagingPath} already has ${existing.source} mounted, not ${device.path}`);
    log.info({ device: device.path }, 'volume already staged');
    return {};
  }
  await ctx.host.mkdir(stagingPath);
  const mountFs = await ensureFilesystem(ctx, device.path, fsType, log);
  await ctx.host.mount(device.path, stagingPath, mountFs, mountFlags);
  log.info({ device: device.path, fsType: mountFs, stagingPath }, 'volume staged');
  return {};
}

async function ensureFilesystem(ctx: NodeContext, device: string, fsType: string, log: NodeContext['logger']): Promise<string> {
  const found = await ctx.host.detectFilesystem(device);
  if (found === undefined) {
    if (!isSupportedFsType(fsType)) throw failedPrecondition(`cannot create a ${fsType} filesystem`);
    log.info({ device, fsType }, 'creating filesystem');
    await ctx.host.makeFilesystem(device, fsType);
    return fsType;
  }
  if (!isSupportedFsType(found)) throw failedPrecondition(`device ${device} holds ${found}, which Trireme neither formats over nor mounts`);
  // Never reformat a volume that holds data: mount what is there and say so.
  if (found !== fsType) log.warn({ device, requested: fsType, found }, 'volume holds a different filesystem than requested; mounting it as it is');
  return found;
}

/**
 * NodeUnstageVolume: unmount the staging path, then log out unless the device
 * is still mounted somewhere or another staged volume shares the session.
 */
export async function nodeUnstageVolume(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const volumeId = request.volume_id as string;
  const stagingPath = request.staging_target_path as string;
  const log = ctx.logger.child({ volume: volumeId });
  await unmountAll(ctx, stagingPath);

  const state = await ctx.states.load(volumeId);
  if (!state) {
    log.info('volume not staged on this node');
    return {};
  }
  const devicePath = ctx.acquirer.devicePath(state.target);
  const device = await ctx.host.blockDevice(devicePath);
  if (device) {
    const users = (await ctx.mounts.read()).filter((m) => m.majorMinor === device.majorMinor || isDeviceNodeBind(m, device.path));
    if (users.length > 0) throw failedPrecondition(`volume ${volumeId} is still mounted at ${users.map((m) => m.mountPoint).join(', ')}; unpublish it first`);
  }
  const sharing = (await ctx.states.all()).filter((s) => s.volumeId !== volumeId && s.target.iqn === state.target.iqn && s.target.portal === state.target.portal);
  if (sharing.length === 0) await ctx.acquirer.detach(state.target);
  else log.info({ sharedWith: sharing.map((s) => s.volumeId) }, 'session still used by other volumes; staying logged in');
  await ctx.states.remove(volumeId);
  log.info('volume unstaged');
  return {};
}
