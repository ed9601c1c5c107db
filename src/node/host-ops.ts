import { setTimeout as sleep } from 'node:timers/promises';
import { TriremeError } from '../common/errors';
import { HostCommandError, type HostExecutor } from './executor';

/** Filesystems the node plugin creates and grows. */
export const SUPPORTED_FS_TYPES = ['ext4', 'xfs'] as const;
export type FsType = (typeof SUPPORTED_FS_TYPES)[number];

export function isSupportedFsType(value: string): value is FsType {
  return (SUPPORTED_FS_TYPES as readonly string[]).includes(value);
}

export interface BlockDeviceInfo {
  /** The canonical device node (/dev/sdX, /dev/loopN), links resolved. */
  readonly path: string;
  /** `major:minor` in decimal, as /proc/self/mountinfo prints it. */
  readonly majorMinor: string;
}

/**
 * Host operations the node service needs besides device acquisition, all run
 * through the executor: waiting for a device node, probing and creating
 * filesystems, mounting, statfs and growing.
 */
export class HostOps {
  constructor(private readonly executor: HostExecutor) {}

  /** The device behind `path` when it is (or links to) a block device, else undefined. */
  async blockDevice(path: string): Promise<BlockDeviceInfo | undefined> {
    // %F file type, %t/%T major/minor in hex; -L follows the by-path link.
    const result = await this.executor.run('stat', ['-L', '-c', '%F|%t|%T', '--', path], { okExitCodes: [1] });
    if (result.exitCode !== 0) return undefined;
    const [type, major, minor] = result.stdout.trim().split('|');
    if (type !== 'block special file') return undefined;
    const real = await this.executor.run('readlink', ['-f', '--', path]);
    return { path: real.stdout.trim(), majorMinor: `${parseInt(major, 16)}:${parseInt(minor, 16)}` };
  }

  /**
   * Polls for the device link an initiator login creates (udev adds
   * /dev/disk/by-path/... a moment after the SCSI scan). Bounded: a login that
   * produced no device within `timeoutMs` is an error, not a hang.
   */
  async waitForBlockDevice(path: string, timeoutMs: number, intervalMs = 100): Promise<BlockDeviceInfo> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const device = await this.blockDevice(path);
      if (device) return device;
      if (Date.now() >= deadline) throw new TriremeError('ERR_DEVICE_TIMEOUT', `device ${path} did not appear within ${timeoutMs} ms`);
      await sleep(intervalMs);
    }
  }

  async deviceSizeBytes(device: string): Promise<number> {
    const { stdout } = await this.executor.run('blockdev', ['--getsize64', device]);
    return Number(stdout.trim());
  }

  /** The filesystem type blkid finds on the device, or undefined when it finds none (exit 2). */
  async detectFilesystem(device: string): Promise<string | undefined> {
    // -p probes the device itself rather than trusting blkid's cache, which may
    // describe whatever was on this device node before.
    const result = await this.executor.run('blkid', ['-p', '-o', 'value', '-s', 'TYPE', device], { okExitCodes: [2] });
    const type = result.stdout.trim();
    return result.exitCode === 2 || type === '' ? undefined : type;
  }

  async makeFilesystem(device: string, fsType: FsType): Promise<void> {
    // Never -f/-F on xfs: blkid has just said the device is empty, and if it is
    // not, refusing is the safe answer. ext4: -F only lets mkfs work on a whole
    // device; -m 0 because no root-reserved blocks are wanted inside a pod volume.
    if (fsType === 'ext4') await this.executor.run('mkfs.ext4', ['-q', '-F', '-m', '0', device], { timeoutMs: 600_000 });
    else await this.executor.run('mkfs.xfs', ['-q', device], { timeoutMs: 600_000 });
  }

  async mkdir(path: string): Promise<void> {
    await this.executor.run('mkdir', ['-p', '--', path]);
  }

  /** Creates an empty file (the bind-mount target of a raw block volume) if missing. */
  async touch(path: string): Promise<void> {
    await this.executor.run('touch', ['--', path]);
  }

  async exists(path: string): Promise<boolean> {
    const result = await this.executor.run('test', ['-e', path], { okExitCodes: [1] });
    return result.exitCode === 0;
  }

  /** stat(2) of the path itself: fails with EIO on a filesystem that has shut down. */
  async lookup(path: string): Promise<void> {
    await this.executor.run('stat', ['-c', '%i', '--', path], { timeoutMs: 10_000 });
  }

  async remove(path: string): Promise<void> {
    // rmdir for directories, rm for files: never recursive, so a path that still
    // holds data (a failed unmount) is never emptied.
    const isDir = await this.executor.run('test', ['-d', path], { okExitCodes: [1] });
    if (isDir.exitCode === 0) await this.executor.run('rmdir', ['--', path]);
    else await this.executor.run('rm', ['-f', '--', path]);
  }

  async mount(source: string, target: string, fsType: string, options: readonly string[]): Promise<void> {
    const args = ['-t', fsType];
    if (options.length > 0) args.push('-o', options.join(','));
    await this.executor.run('mount', [...args, '--', source, target]);
  }

  /**
   * Bind mount, read-only when asked. A read-only bind needs a second remount:
   * MS_RDONLY is ignored on the initial MS_BIND (mount(2)), so doing it in two
   * explicit steps works with every util-linux version.
   */
  async bindMount(source: string, target: string, readonly: boolean, options: readonly string[] = []): Promise<void> {
    await this.executor.run('mount', ['--bind', '--', source, target]);
    if (readonly || options.length > 0) {
      const remount = ['remount', 'bind', ...(readonly ? ['ro'] : []), ...options];
      await this.executor.run('mount', ['-o', remount.join(','), '--', target]);
    }
  }

  async unmount(target: string): Promise<void> {
    await this.executor.run('umount', ['--', target]);
  }

  /** statfs(2) via stat -f: block size, total/free/available blocks, total/free inodes. */
  async statfs(path: string): Promise<{ bytesTotal: number; bytesAvailable: number; bytesUsed: number; inodesTotal: number; inodesFree: number }> {
    const { stdout } = await this.executor.run('stat', ['-f', '-c', '%S %b %f %a %c %d', '--', path]);
    const [bsize, blocks, free, avail, files, ffree] = stdout.trim().split(/\s+/).map(Number);
    return { bytesTotal: blocks * bsize, bytesAvailable: avail * bsize, bytesUsed: (blocks - free) * bsize, inodesTotal: files, inodesFree: ffree };
  }

  /** Grows a mounted filesystem to fill its device: resize2fs works online on ext4, xfs_growfs takes the mount point. */
  async growFilesystem(fsType: string, device: string, mountPoint: string): Promise<void> {
    if (fsType === 'ext4' || fsType === 'ext3' || fsType === 'ext2') await this.executor.run('resize2fs', [device], { timeoutMs: 600_000 });
    else if (fsType === 'xfs') await this.executor.run('xfs_growfs', [mountPoint], { timeoutMs: 600_000 });
    else throw new TriremeError('ERR_UNSUPPORTED_FS', `cannot grow a ${fsType} filesystem`);
  }

  /** Reads one sector through the page cache bypass to tell a dead device from a live one. */
  async probeRead(device: string): Promise<void> {
    await this.executor.run('dd', [`if=${device}`, 'of=/dev/null', 'bs=4096', 'count=1', 'iflag=direct', 'status=none'], { timeoutMs: 10_000 });
  }
}

export { HostCommandError };
