import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { ChapSecrets, DeviceAcquirer, VolumeTarget } from '../../../src/node';

/**
 * Device acquisition on loop devices. This host's kernel has no iSCSI
 * initiator, so iscsiadm login cannot make a device appear here; this is the one
 * part of staging replaced for the tests (the iSCSI path runs in
 * shared/vm-initiator). Everything else the node service does (waiting for the
 * device link, blkid, mkfs, mount, bind mounts, statfs, resize) then runs for
 * real against a real loop device. The by-path link is created a moment after
 * attach returns, as udev does after a SCSI scan.
 */
export class LoopAcquirer implements DeviceAcquirer {
  /** Backing file per target IQN, or per `IQN#LUN`. */
  readonly files = new Map<string, string>();
  attachCount = 0;
  detachCount = 0;
  rescanCount = 0;
  linkDelayMs = 150;
  /** The CHAP credentials of the last attach, as the iSCSI login would have used them. */
  lastChap: ChapSecrets | undefined;

  constructor(private readonly byPathDir: string) {
    mkdirSync(byPathDir, { recursive: true });
  }

  devicePath(target: VolumeTarget): string {
    return join(this.byPathDir, `ip-${target.portal}-iscsi-${target.iqn}-lun-${target.lun}`);
  }

  private backing(target: VolumeTarget): string {
    // `IQN#LUN` names one LUN of a target with several; a bare IQN its only LUN.
    const file = this.files.get(`${target.iqn}#${target.lun}`) ?? this.files.get(target.iqn);
    if (!file) throw new Error(`no backing file for ${target.iqn}`);
    return file;
  }

  /** Loop devices currently attached to the backing file (`losetup -j`). */
  loopDevicesOf(file: string): string[] {
    const out = execFileSync('losetup', ['-j', file, '-O', 'NAME', '-n'], { encoding: 'utf8' });
    return out.split('\n').map((l) => l.trim()).filter(Boolean);
  }

  async attach(target: VolumeTarget, chap?: ChapSecrets): Promise<string> {
    this.attachCount++;
    this.lastChap = chap;
    const link = this.devicePath(target);
    const file = this.backing(target);
    const device = this.loopDevicesOf(file)[0] ?? execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
    if (!existsSync(link)) {
      setTimeout(() => {
        // The test may have finished and removed its directory meanwhile.
        if (existsSync(this.byPathDir) && !existsSync(link)) symlinkSync(device, link);
      }, this.linkDelayMs).unref();
    }
    return link;
  }

  /** Like an iSCSI logout, which removes every LUN of the session: all LUNs of the target go. */
  async detach(target: VolumeTarget): Promise<void> {
    this.detachCount++;
    for (const [key, file] of this.files) {
      const [iqn, lun] = key.split('#');
      if (iqn !== target.iqn) continue;
      for (const device of this.loopDevicesOf(file)) execFileSync('losetup', ['-d', device]);
      rmSync(this.devicePath({ ...target, lun: lun === undefined ? target.lun : Number(lun) }), { force: true });
    }
  }

  async rescan(target: VolumeTarget): Promise<void> {
    this.rescanCount++;
    execFileSync('losetup', ['-c', readlinkSync(this.devicePath(target))]);
  }

  async ready(): Promise<boolean> {
    execFileSync('losetup', ['--version']);
    return true;
  }
}
