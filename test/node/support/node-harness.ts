import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityService, startCsiServer, type RunningCsiServer } from '../../../src/common/csi';
import { silentLogger } from '../../../src/common/logger';
import { createExecutor, nodeReadinessCheck, nodeService, parseMountInfo } from '../../../src/node';
import { CsiTestClient } from './csi-client';
import { LoopAcquirer } from './loop-acquirer';

/** Host tools the node tests drive, with the Debian package of each. */
export const NODE_TOOLS = {
  losetup: 'mount',
  blkid: 'util-linux',
  'mkfs.ext4': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  blockdev: 'util-linux',
};

export interface NodePlugin {
  readonly dir: string;
  readonly client: CsiTestClient;
  readonly acquirer: LoopAcquirer;
  readonly server: RunningCsiServer;
  /** A sparse backing file for a new volume, served under this IQN. */
  addVolume(iqn: string, sizeBytes: number): string;
  close(): Promise<void>;
}

/** Starts identity + node services on a real unix socket in a fresh temp dir. */
export async function startNodePlugin(options: { deviceTimeoutMs?: number } = {}): Promise<NodePlugin> {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-node-'));
  const logger = silentLogger();
  const executor = createExecutor('direct', logger);
  const acquirer = new LoopAcquirer(join(dir, 'by-path'));
  const server = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: '0.0.0-test', controllerService: false, readinessChecks: [{ name: 'host', check: nodeReadinessCheck(executor, acquirer) }], logger }),
    node: nodeService({ nodeId: 'node-a', maxVolumesPerNode: 64, executor, acquirer, stateDir: join(dir, 'state'), deviceTimeoutMs: options.deviceTimeoutMs ?? 5000, logger }),
    logger,
  });
  const client = new CsiTestClient(server.socketPath);
  const files: string[] = [];
  return {
    dir,
    client,
    acquirer,
    server,
    addVolume(iqn: string, sizeBytes: number): string {
      const file = join(dir, `${iqn.replace(/[^a-z0-9]/gi, '_')}.img`);
      writeFileSync(file, '');
      truncateSync(file, sizeBytes);
      acquirer.files.set(iqn, file);
      files.push(file);
      return file;
    },
    async close(): Promise<void> {
      client.close();
      await server.close();
      // Whatever a failed test left behind: unmount deepest first, free the loops.
      const mounts = parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8'))
        .filter((m) => m.mountPoint.startsWith(dir))
        .sort((a, b) => b.mountPoint.length - a.mountPoint.length);
      for (const m of mounts) execFileSync('umount', ['-l', m.mountPoint]);
      for (const file of files) for (const dev of acquirer.loopDevicesOf(file)) execFileSync('losetup', ['-d', dev]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function mountsUnder(prefix: string): ReturnType<typeof parseMountInfo> {
  return parseMountInfo(readFileSync('/proc/self/mountinfo', 'utf8')).filter((m) => m.mountPoint === prefix || m.mountPoint.startsWith(`${prefix}/`));
}

export const MiB = 1024 * 1024;

export function mountCapability(fsType: string, flags: string[] = []): object {
  return { mount: { fs_type: fsType, mount_flags: flags }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
}

export function blockCapability(): object {
  return { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
}

export function volumeContext(iqn: string): Record<string, string> {
  return { portal: '127.0.0.1:3260', iqn, lun: '0' };
}
