import { Command, CommanderError } from 'commander';
import { createRootLogger, type Logger } from '../common/logger';
import { VERSION } from './version';


type CommandDeps = { createLogger(): Logger };

/**
 * Each sub-command's module, loaded only when that command runs (all of them
 * for the top-level help): a replica or controller process then carries none
 * of the other roles' code, which is a third of a replica's memory at idle on
 * a small machine.
 */
const COMMANDS: Record<string, (program: Command, deps: CommandDeps) => Promise<unknown>> = {
  up: async (program, deps) => (await import('./up-command.js')).registerUpCommand(program, deps),
  controller: async (program, deps) => (await import('./controller-command.js')).registerControllerCommand(program, deps),
  volume: async (program) => (await import('./volume-command.js')).registerVolumeCommand(program),
  snapshot: async (program) => (await import('./snapshot-command.js')).registerSnapshotCommand(program),
  target: async (program, deps) => (await import('./target-command.js')).registerTargetCommand(program, deps),
  replica: async (program, deps) => {
    const { registerReplicaCommand } = await import('./replica-command.js');
    const { registerReplicaAdminCommands } = await import('./replica-admin-command.js');
    registerReplicaAdminCommands(registerReplicaCommand(program, deps));
  },
  csi: async (program, deps) => (await import('./csi-command.js')).registerCsiCommand(program, deps),
  bench: async (program) => (await import('./bench-command.js')).registerBenchCommand(program),
};

/** The sub-command argv names, skipping global options (and --log-level's value). */
function commandName(argv: readonly string[]): string | undefined {
  for (let i = 2; i < argv.length; i++) {
    if (argv[i] === '--log-level') i++;
    else if (!argv[i].startsWith('-')) return argv[i];
  }
  return undefined;
}

/** Builds the `trireme` command tree: the named command only, or every command when none is named. */
export async function buildProgram(argv: readonly string[]): Promise<Command> {
  const program = new Command('trireme')
    .description('Trireme: replicated block storage with an iSCSI target and a Kubernetes CSI driver')
    .version(VERSION)
    .option('--log-level <level>', 'pino log level (trace, debug, info, warn, error)', process.env.TRIREME_LOG_LEVEL ?? 'info')
    .showHelpAfterError();
  const deps: CommandDeps = { createLogger: () => createRootLogger({ level: program.opts<{ logLevel: string }>().logLevel }) };
  const name = commandName(argv);
  const wanted = name !== undefined && name in COMMANDS ? [name] : Object.keys(COMMANDS);
  for (const command of wanted) await COMMANDS[command](program, deps);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  const program = await buildProgram(argv);
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
