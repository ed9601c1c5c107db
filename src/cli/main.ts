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
const COMMANDS: Record<string, (program: Command, deps: CommandDeps, argv: readonly string[]) => Promise<unknown>> = {
  up: async (program, deps) => (await import('./up-command.js')).registerUpCommand(program, deps),
  controller: async (program, deps) => (await import('./controller-command.js')).registerControllerCommand(program, deps),
  volume: async (program) => (await import('./volume-command.js')).registerVolumeCommand(program),
  snapshot: async (program) => (await import('./snapshot-command.js')).registerSnapshotCommand(program),
  target: async (program, deps) => (await import('./target-command.js')).registerTargetCommand(program, deps),
  replica: async (program, deps, argv) => {
    const { registerReplicaCommand } = await import('./replica-command.js');
    const replica = registerReplicaCommand(program, deps);
    // The operator sub-commands reach the manager through the controller's
    // gRPC clients and render tables: a replica server loads none of that.
    if (!servesReplica(argv)) (await import('./replica-admin-command.js')).registerReplicaAdminCommands(replica);
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

/** `trireme replica` options that take a value (and the global --log-level), to find the first positional after them. */
const REPLICA_VALUE_OPTIONS = new Set(['--dir', '--listen', '--size', '--grpc', '--metrics', '--volume-id', '--replica-id', '--log-level']);

/**
 * Whether argv runs a replica server (`trireme replica serve ...`, or
 * `trireme replica --dir D ...` with no sub-command) rather than an operator
 * sub-command or help, which need the operator sub-commands registered.
 */
export function servesReplica(argv: readonly string[]): boolean {
  const at = argv.indexOf('replica');
  if (at < 0) return false;
  const rest = argv.slice(at + 1);
  if (rest.includes('--help') || rest.includes('-h')) return false;
  for (let i = 0; i < rest.length; i++) {
    if (REPLICA_VALUE_OPTIONS.has(rest[i])) i++;
    else if (!rest[i].startsWith('-')) return rest[i] === 'serve';
  }
  return rest.some((a) => a === '--memory' || a === '--dir' || a.startsWith('--dir='));
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
  for (const command of wanted) await COMMANDS[command](program, deps, argv);
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
