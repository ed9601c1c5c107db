import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command, CommanderError } from 'commander';
import { createRootLogger } from '../common/logger';
import { registerControllerCommand } from './controller-command';
import { registerCsiCommand } from './csi-command';
import { registerReplicaAdminCommands } from './replica-admin-command';
import { registerReplicaCommand } from './replica-command';
import { registerSnapshotCommand } from './snapshot-command';
import { registerTargetCommand } from './target-command';
import { registerUpCommand } from './up-command';
import { registerVolumeCommand } from './volume-command';
import { registerBenchCommand } from './bench-command';

// dist/src/cli -> the package root; read at run time so the version has one source.
const VERSION: string = (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;

/** Builds the `trireme` command tree. Each sub-command lives in its own module. */
export function buildProgram(): Command {
  const program = new Command('trireme')
    .description('Trireme: replicated block storage with an iSCSI target and a Kubernetes CSI driver')
    .version(VERSION)
    .option('--log-level <level>', 'pino log level (trace, debug, info, warn, error)', process.env.TRIREME_LOG_LEVEL ?? 'info')
    .showHelpAfterError();
  const createLogger = () => createRootLogger({ level: program.opts<{ logLevel: string }>().logLevel });
  registerUpCommand(program, { createLogger });
  registerControllerCommand(program, { createLogger });
  registerVolumeCommand(program);
  registerSnapshotCommand(program);
  registerTargetCommand(program, { createLogger });
  registerReplicaAdminCommands(registerReplicaCommand(program, { createLogger }));
  registerCsiCommand(program, { createLogger });
  registerBenchCommand(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode;
      return;
    }
    throw err;
  }
}
