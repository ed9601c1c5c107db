import { notFound, outOfRange, type CapacityRange, type CsiRequest } from '../common/csi';
import { isDeviceNodeBind, type NodeContext } from './node-context';

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * NodeGetVolumeStats: bytes and inodes from statfs for a filesystem, the device
 * size for a raw block volume, and a volume condition (CSI VOLUME_CONDITION):
 * abnormal when the path is no longer a mount, or statfs or a direct read of
 * the device fails (the initiator lost the target, the filesystem shut down).
 */
export async function nodeGetVolumeStats(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const volumePath = request.volume_path as string;
  // The mount table first: it answers without touching the filesystem, which
  // may be the very thing that is failing.
  const mount = await ctx.mounts.at(volumePath);
  if (!mount) {
    if (!(await ctx.host.exists(volumePath))) throw notFound(`volume path ${volumePath} does not exist`);
    return { usage: [], volume_condition: { abnormal: true, message: `${volumePath} is not mounted` } };
  }

  // A published raw block volume is a device node bind-mounted at the path: its
  // size is the device's, and statfs would describe /dev instead.
  if (await ctx.host.blockDevice(volumePath)) {
    try {
      const total = await ctx.host.deviceSizeBytes(volumePath);
      await ctx.host.probeRead(volumePath);
      return { usage: [{ unit: 'BYTES', total }], volume_condition: { abnormal: false, message: 'volume is healthy' } };
    } catch (err) {
      return { usage: [], volume_condition: { abnormal: true, message: `block device at ${volumePath} failed: ${errorText(err)}` } };
    }
  }
  try {
    const fs = await ctx.host.statfs(volumePath);
    // statfs keeps answering on a filesystem that has shut down after an I/O
    // error (xfs does); a lookup of the root does not.
    await ctx.host.lookup(volumePath);
    if (mount.source.startsWith('/dev/')) await ctx.host.probeRead(mount.source);
    return {
      usage: [
        { unit: 'BYTES', total: fs.bytesTotal, available: fs.bytesAvailable, used: fs.bytesUsed },
        { unit: 'INODES', total: fs.inodesTotal, available: fs.inodesFree, used: fs.inodesTotal - fs.inodesFree },
      ],
      volume_condition: { abnormal: false, message: 'volume is healthy' },
    };
  } catch (err) {
    return { usage: [], volume_condition: { abnormal: true, message: `I/O on ${volumePath} failed: ${errorText(err)}` } };
  }
}

/**
 * NodeExpandVolume: make the host see the grown device (iSCSI rescan), then grow
 * the filesystem online. For a raw block volume the rescan is all there is.
 */
export async function nodeExpandVolume(ctx: NodeContext, request: CsiRequest): Promise<object> {
  const volumeId = request.volume_id as string;
  const volumePath = request.volume_path as string;
  const mount = await ctx.mounts.at(volumePath);
  if (!mount) throw notFound(`volume path ${volumePath} is not mounted`);
  const state = await ctx.states.load(volumeId);
  if (!state) throw notFound(`volume ${volumeId} is not staged on this node`);
  await ctx.acquirer.rescan(state.target);
  const device = await ctx.host.blockDevice(ctx.acquirer.devicePath(state.target));
  if (!device) throw notFound(`volume ${volumeId}: its device is gone`);
  const size = await ctx.host.deviceSizeBytes(device.path);
  const required = (request.capacity_range as CapacityRange | null)?.required_bytes ?? 0;
  if (required > size) throw outOfRange(`volume ${volumeId}: device is ${size} bytes after rescan, ${required} requested`);
  if (!isDeviceNodeBind(mount, device.path)) {
    await ctx.host.growFilesystem(mount.fsType, device.path, volumePath);
    ctx.logger.info({ volume: volumeId, sizeBytes: size, fsType: mount.fsType }, 'filesystem grown');
  }
  return { capacity_bytes: size };
}
