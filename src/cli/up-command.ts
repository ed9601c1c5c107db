import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import type { Logger } from '../common/logger';
import { startStack, DEMO_VOLUME, type Stack } from '../controller/manager/standalone-stack';
import type { VolumeDescription } from '../controller/orchestrator/local-orchestrator';
import { defaultDataDir } from './manager-connection';
import { onShutdownSignal } from './signals';
import { startUpCsi } from './up-csi';

export interface UpDeps {
  createLogger(): Logger;
}

interface UpOptions {
  data?: string;
  host: string;
  demo: boolean;
  csi: boolean;
  portalPort: number;
  replicaPort: number;
  managementPort: number;
  metricsPort: number;
}

/**
 * How children run `trireme`: this node binary on the compiled entry beside
 * this file (never bin/trireme.js, whose build check must not run in every
 * child), or on the script $TRIREME_BIN names (a packaged build).
 */
export function triremeInvocation(): { command: string; args: string[] } {
  return { command: process.execPath, args: [process.env.TRIREME_BIN || join(__dirname, 'entry.js')] };
}

/** The lines `trireme up` prints once the stack is ready. */
export function renderReady(stack: Stack, dataDir: string, demo: VolumeDescription | undefined, csiSocket?: string): string {
  const lines = [`trireme: standalone stack ready (data ${dataDir}, manager ${stack.managerAddress})`];
  if (csiSocket) lines.push(`CSI driver csi.trireme.io on unix://${csiSocket}`);
  if (demo) {
    lines.push(`demo volume "${demo.record.name}" (${demo.record.sizeBytes / 1024 ** 3} GiB, ${demo.record.replicas.length} replicas) is served at ${demo.portal}:`);
    lines.push(`  iscsiadm -m discovery -t sendtargets -p ${demo.portal}`);
    lines.push(`  qemu-io -f raw -c 'read 0 4k' iscsi://${demo.portal}/${demo.record.iqn}/0`);
  }
  lines.push(`manage volumes with: trireme volume ls --data ${dataDir}`);
  return lines.join('\n');
}

/**
 * `trireme up`: the standalone stack on one machine — manager API on
 * DATA/manager.sock, volume records in DATA/db, one controller and its
 * replicas per volume as supervised child processes, a demo volume on first
 * start, and the CSI driver on DATA/csi.sock. Ports: the first volume's portal is 3260, each further volume gets
 * the next free port (one portal per controller process); replica data ports
 * from 9700, management gRPC from 9500, /metrics from 9600.
 */
export function registerUpCommand(program: Command, deps: UpDeps): Command {
  const int = (t: string): number => Number.parseInt(t, 10);
  return program
    .command('up')
    .description('run the standalone stack: manager, local orchestrator and a demo volume')
    .option('--data <dir>', 'data directory ($TRIREME_DATA, default ~/.trireme)')
    .option('--host <address>', 'address the controllers and replicas listen on', '127.0.0.1')
    .option('--no-demo', 'do not create the demo volume on first start')
    .option('--no-csi', 'do not serve the CSI driver on DATA/csi.sock')
    .option('--portal-port <port>', 'first iSCSI portal port', int, 3260)
    .option('--replica-port <port>', 'first replica data port', int, 9700)
    .option('--management-port <port>', 'first controller management port', int, 9500)
    .option('--metrics-port <port>', 'first controller /metrics port', int, 9600)
    .action(async (opts: UpOptions) => {
      const logger = deps.createLogger();
      const dataDir = resolve(opts.data ?? defaultDataDir());
      const stack = await startStack({
        dataDir,
        logger,
        host: opts.host,
        demo: opts.demo,
        trireme: triremeInvocation(),
        ports: { portal: opts.portalPort, replica: opts.replicaPort, management: opts.managementPort, metrics: opts.metricsPort },
      });
      const csi = opts.csi ? await startUpCsi({ dataDir, orchestrator: stack.orchestrator, logger }).catch(async (err: unknown) => {
        await stack.close();
        throw err;
      }) : undefined;
      const demo = stack.demo ?? (await stack.orchestrator.describe(DEMO_VOLUME.name).catch(() => undefined));
      process.stdout.write(`${renderReady(stack, dataDir, demo, csi?.socketPath)}\n`);
      await onShutdownSignal(logger);
      await csi?.close();
      await stack.close();
      logger.flush();
    });
}
