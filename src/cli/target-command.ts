import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';
import { startHttpEndpoint } from '../common/http-endpoint';
import { parseHostPort } from '../common/host-port';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { parseSize } from '../common/size';
import type { BlockDevice } from '../iscsi/block-device';
import { FileDevice } from '../iscsi/device/file-device';
import { MemoryDevice } from '../iscsi/device/memory-device';
import { IscsiServer } from '../iscsi/server';
import { onShutdownSignal } from './signals';

interface TargetOptions {
  device: string;
  size?: string;
  blockSize: string;
  portal: string;
  iqn: string;
  chapUser?: string;
  chapSecret?: string;
  mutualChapUser?: string;
  mutualChapSecret?: string;
  discoveryChapUser?: string;
  discoveryChapSecret?: string;
  metrics: string;
}

export const DEFAULT_TARGET_IQN = 'iqn.2026-11.io.trireme:target';

/** `trireme target`: a plain iSCSI target over one file or memory device. */
export function registerTargetCommand(program: Command, deps: { createLogger(): Logger }): void {
  program
    .command('target')
    .description('serve a file or memory device as a plain iSCSI target (no replication)')
    .requiredOption('--device <spec>', 'file:PATH (created sparse if missing) or mem')
    .option('--size <size>', 'device size, e.g. 1G (required for mem and for a new file)')
    .option('--block-size <bytes>', 'logical block size: 512 or 4096', '512')
    .option('--portal <host:port>', 'address to listen on', '0.0.0.0:3260')
    .option('--iqn <iqn>', 'target name', DEFAULT_TARGET_IQN)
    .option('--chap-user <user>', 'require one-way CHAP with this user name')
    .option('--chap-secret <secret>', 'CHAP secret (also TRIREME_CHAP_SECRET)')
    .option('--mutual-chap-user <user>', 'target user name for mutual CHAP')
    .option('--mutual-chap-secret <secret>', 'target secret for mutual CHAP')
    .option('--discovery-chap-user <user>', 'require CHAP with this user name for SendTargets discovery')
    .option('--discovery-chap-secret <secret>', 'CHAP secret for discovery sessions')
    .option('--metrics <host:port>', 'address of /metrics and /healthz', '127.0.0.1:9502')
    .action(async (options: TargetOptions) => {
      await runTarget(options, deps.createLogger());
    });
}

async function openDevice(spec: string, size: number | undefined, blockSize: number): Promise<BlockDevice> {
  if (spec === 'mem') {
    if (size === undefined) throw new InvalidArgumentError('--size is required with --device mem');
    return new MemoryDevice({ size, blockSize });
  }
  if (spec.startsWith('file:') && spec.length > 'file:'.length) {
    return FileDevice.open(spec.slice('file:'.length), { size, blockSize });
  }
  throw new InvalidArgumentError(`invalid --device "${spec}": expected file:PATH or mem`);
}

function chapFrom(user: string | undefined, secret: string | undefined, flag: string): { user: string; secret: string } | undefined {
  if (user === undefined && secret === undefined) return undefined;
  if (!user || !secret) throw new InvalidArgumentError(`--${flag}-user and --${flag}-secret go together`);
  return { user, secret };
}

async function runTarget(options: TargetOptions, logger: Logger): Promise<void> {
  const blockSize = Number(options.blockSize);
  const size = options.size === undefined ? undefined : parseSize(options.size);
  const portal = parseHostPort(options.portal, 3260);
  const metricsAddress = parseHostPort(options.metrics);
  const chap = chapFrom(options.chapUser, options.chapSecret ?? process.env.TRIREME_CHAP_SECRET, 'chap');
  const mutualChap = chapFrom(options.mutualChapUser, options.mutualChapSecret, 'mutual-chap');
  if (mutualChap && !chap) throw new InvalidArgumentError('mutual CHAP needs one-way CHAP (--chap-user/--chap-secret) too');
  const discoveryChap = chapFrom(options.discoveryChapUser, options.discoveryChapSecret, 'discovery-chap');

  const registry = createRegistry({ labels: { role: 'target' } });
  const device = await openDevice(options.device, size, blockSize);
  const server = new IscsiServer({ logger, registry, discoveryChap: discoveryChap && { chap: discoveryChap } });
  server.addTarget({ iqn: options.iqn, luns: [{ lun: 0, device }], chap, mutualChap });
  const bound = await server.listen(portal.host, portal.port);
  const http = await startHttpEndpoint({ ...metricsAddress, registry, logger });
  logger.info({ iqn: options.iqn, portal: `${bound.host}:${bound.port}`, size: device.size(), metrics: `${http.address.address}:${http.address.port}` }, 'target ready');
  const connectHost = bound.host === '0.0.0.0' || bound.host === '::' ? '127.0.0.1' : bound.host;
  const credentials = chap ? `${chap.user}%SECRET@` : '';
  process.stdout.write(
    `Serving ${options.device} (${device.size()} bytes) as ${options.iqn} LUN 0 on ${bound.host}:${bound.port}\n` +
      `  qemu-io -f raw -c 'read 0 4k' iscsi://${credentials}${connectHost}:${bound.port}/${options.iqn}/0\n` +
      `  iscsiadm -m discovery -t sendtargets -p ${connectHost}:${bound.port}\n`,
  );

  await onShutdownSignal(logger);
  await server.close();
  await http.close();
  await device.close();
  logger.info('target stopped');
}
