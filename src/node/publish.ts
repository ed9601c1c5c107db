import { dirname } from 'node:path';
import { alreadyExists, failedPrecondition, type CsiRequest, type StringMap, type VolumeCapability } from '../common/csi';
import { isDeviceNodeBind, parseCapability, unmountAll, type NodeContext } from './node-context';

/**
 * NodePublishVolume: bind-mount the staged filesystem (or, for a raw block
 * volume, the device node) at the pod's target path, read-only when asked.
 * A repeat with the same arguments succeeds; a target already holding something
 * else, or this volume with the other read-only setting, is ALREADY_EXISTS.
 */
export async function nodePublishVolume(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const volumeId = request.volume_id as string;
  const targetPath = request.target_path as string;
  const stagingPath = request.staging_target_path as string;
  const readonly = request.readonly === true;
  const { block } = parseCapability(request.volume_capability as VolumeCapability, (request.volume_context ?? {}) as StringMap);
  const state = await ctx.states.load(volumeId);
  if (!state) throw failedPrecondition(`volume ${volumeId} is not staged on this node`);
  if (state.block !== block) throw failedPrecondition(`volume ${volumeId} was staged as ${state.block ? 'block' : 'mount'} and cannot be published as ${block ? 'block' : 'mount'}`);

  const existing = await ctx.mounts.at(targetPath);
  if (block) {
    const device = await ctx.host.blockDevice(ctx.acquirer.devicePath(state.target));
    if (!device) throw failedPrecondition(`volume ${volumeId}: its device is gone; stage it again`);
    if (existing) {
      if (!isDeviceNodeBind(existing, device.path)) throw alreadyExists(`target ${targetPath} already has ${existing.source}${existing.root} mounted`);
      checkReadonly(existing.options, readonly, targetPath);
      return {};
    }
    await ctx.host.mkdir(dirname(targetPath));
    await ctx.host.touch(targetPath);
    await ctx.host.bindMount(device.path, targetPath, readonly);
  } else {
    const staged = await ctx.mounts.at(stagingPath);
    if (!staged) throw failedPrecondition(`volume ${volumeId} is not mounted at its staging path ${stagingPath}`);
    if (existing) {
      if (existing.majorMinor !== staged.majorMinor) throw alreadyExists(`target ${targetPath} already has ${existing.source} mounted`);
      checkReadonly(existing.options, readonly, targetPath);
      return {};
    }
    await ctx.host.mkdir(targetPath);
    await ctx.host.bindMount(stagingPath, targetPath, readonly);
  }
  ctx.logger.info({ volume: volumeId, targetPath, readonly, block }, 'volume published');
  return {};
}

function checkReadonly(options: readonly string[], readonly: boolean, targetPath: string): void {
  if (options.includes('ro') !== readonly) throw alreadyExists(`target ${targetPath} is already published ${readonly ? 'read-write' : 'read-only'}`);
}

/** NodeUnpublishVolume: unmount and remove the target path the plugin created; nothing there is success. */
export async function nodeUnpublishVolume(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const targetPath = request.target_path as string;
  await unmountAll(ctx, targetPath);
  if (await ctx.host.exists(targetPath)) await ctx.host.remove(targetPath);
  ctx.logger.info({ volume: request.volume_id, targetPath }, 'volume unpublished');
  return {};
}
