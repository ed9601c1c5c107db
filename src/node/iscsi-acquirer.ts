import { TriremeError } from '../common/errors';
import type { Logger } from '../common/logger';
import type { ChapSecrets, DeviceAcquirer, VolumeTarget } from './device-acquirer';
import { HostCommandError, type HostExecutor } from './executor';

// open-iscsi exit codes (iscsi_err.h) that mean "already in the wanted state".
const ISCSI_ERR_SESS_EXISTS = 15;
const ISCSI_ERR_NO_OBJS_FOUND = 21;
// ...and the one that means the target refused our CHAP response (RFC 7143 §12.1.3).
const ISCSI_ERR_LOGIN_AUTH_FAILED = 24;

/** udev's persistent name for an iSCSI LUN (60-persistent-storage.rules). */
export function iscsiByPathLink(target: VolumeTarget): string {
  return `/dev/disk/by-path/ip-${target.portal}-iscsi-${target.iqn}-lun-${target.lun}`;
}

/**
 * Device acquisition with open-iscsi's iscsiadm: SendTargets discovery, a node
 * record with the volume's CHAP settings, login. The kernel initiator then scans
 * the LUN and udev creates the by-path link the node service waits for.
 */
export class IscsiAcquirer implements DeviceAcquirer {
  constructor(
    private readonly executor: HostExecutor,
    private readonly logger: Logger,
  ) {}

  private node(target: VolumeTarget): string[] {
    return ['-m', 'node', '-T', target.iqn, '-p', target.portal];
  }

  private async setNode(target: VolumeTarget, name: string, value: string, secret = false): Promise<void> {
    const args = [...this.node(target), '-o', 'update', '-n', name, '-v', value];
    await this.executor.run('iscsiadm', args, { secretArgs: secret ? [args.length - 1] : [] });
  }

  async attach(target: VolumeTarget, chap?: ChapSecrets): Promise<string> {
    const log = this.logger.child({ iqn: target.iqn, portal: target.portal });
    // nonpersistent: discovery only checks that the portal offers the target. Left
    // to itself iscsiadm would store a node record per TargetAddress the target
    // reports, and behind NAT or a Service that is the target's own address, not
    // the portal this node reaches it by.
    const discovered = await this.executor.run('iscsiadm', ['-m', 'discovery', '-t', 'sendtargets', '-p', target.portal, '-o', 'nonpersistent'], { timeoutMs: 30_000 });
    // SendTargets answers "PORTAL,TPGT IQN" per line (RFC 7143 Appendix C).
    const offered = discovered.stdout.split('\n').some((line) => line.trim().split(/\s+/)[1] === target.iqn);
    if (!offered) throw new TriremeError('ERR_TARGET_NOT_OFFERED', `portal ${target.portal} does not offer target ${target.iqn}`);
    // The node record for exactly the portal from the volume context; -o new
    // rewrites an existing one, so a repeated attach starts from the same record.
    await this.executor.run('iscsiadm', [...this.node(target), '-o', 'new']);
    // The node record's auth settings are rewritten on every attach: a retried
    // stage after a secret rotation must log in with the new secret.
    if (chap) {
      await this.setNode(target, 'node.session.auth.authmethod', 'CHAP');
      await this.setNode(target, 'node.session.auth.username', chap.user);
      await this.setNode(target, 'node.session.auth.password', chap.secret, true);
      if (chap.mutualUser && chap.mutualSecret) {
        await this.setNode(target, 'node.session.auth.username_in', chap.mutualUser);
        await this.setNode(target, 'node.session.auth.password_in', chap.mutualSecret, true);
      }
    } else {
      await this.setNode(target, 'node.session.auth.authmethod', 'None');
    }
    // Sessions come back after a node reboot only if the record says so; kubelet re-stages anyway.
    await this.setNode(target, 'node.startup', 'manual');
    const login = await this.login(target);
    log.info({ alreadyLoggedIn: login.exitCode === ISCSI_ERR_SESS_EXISTS }, 'iscsi session up');
    return iscsiByPathLink(target);
  }

  private async login(target: VolumeTarget): Promise<{ exitCode: number }> {
    try {
      return await this.executor.run('iscsiadm', [...this.node(target), '--login'], { okExitCodes: [ISCSI_ERR_SESS_EXISTS], timeoutMs: 60_000 });
    } catch (err) {
      if (err instanceof HostCommandError && err.exitCode === ISCSI_ERR_LOGIN_AUTH_FAILED) {
        throw new TriremeError('ERR_ISCSI_AUTH_FAILED', `target ${target.iqn} at ${target.portal} refused the CHAP credentials of the node stage secrets`, { cause: err });
      }
      throw err;
    }
  }

  devicePath(target: VolumeTarget): string {
    return iscsiByPathLink(target);
  }

  async detach(target: VolumeTarget): Promise<void> {
    await this.executor.run('iscsiadm', [...this.node(target), '--logout'], { okExitCodes: [ISCSI_ERR_NO_OBJS_FOUND], timeoutMs: 60_000 });
    await this.executor.run('iscsiadm', [...this.node(target), '-o', 'delete'], { okExitCodes: [ISCSI_ERR_NO_OBJS_FOUND] });
    this.logger.info({ iqn: target.iqn, portal: target.portal }, 'iscsi session closed');
  }

  async rescan(target: VolumeTarget): Promise<void> {
    // Rescanning only this target's session re-reads its capacity (READ CAPACITY)
    // without disturbing other volumes' sessions.
    await this.executor.run('iscsiadm', [...this.node(target), '-R'], { timeoutMs: 60_000 });
  }

  async ready(): Promise<boolean> {
    await this.executor.run('iscsiadm', ['--version'], { timeoutMs: 5000 });
    return true;
  }
}
