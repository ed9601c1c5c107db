import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';
import { parseHostPort } from '../common/host-port';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { parseSize } from '../common/size';
import { DEFAULT_DATA_PORT, MemoryReplicaStore, startReplicaServer, type ReplicaStore } from '../replica';
import { openReplicaStore } from '../replica/store';
import { onShutdownSignal } from './signals';

export interface ReplicaCommandDeps {
  createLogger(): Logger;
}

const EXIT_GUARD_MS = 5_000;

interface ServeOptions {
  dir?: string;
  memory?: boolean;
  listen?: string;
  size?: string;
  grpc?: string;
  metrics?: string;
  volumeId?: string;
  replicaId?: string;
}

function addServeOptions(cmd: Command): Command {
  return cmd
    .option('--dir <dir>', 'replica data directory (created with --size when empty)')
    .option('--memory', 'keep the replica in memory (tests and benchmarks; needs --size)')
    .option('--listen <host:port>', `data-path address; the control gRPC service answers there too (default :${DEFAULT_DATA_PORT})`)
    .option('--size <size>', 'volume size when creating the replica (e.g. 10G)')
    .option('--grpc <host:port>', 'also serve the gRPC control service on its own address')
    .option('--metrics <host:port>', 'serve /metrics and /healthz over HTTP')
    .option('--volume-id <id>', 'volume id when creating; checked when opening')
    .option('--replica-id <id>', 'replica id when creating; checked when opening');
}

async function openStore(opts: ServeOptions, logger: Logger, registry: ReturnType<typeof createRegistry>): Promise<ReplicaStore> {
  const size = opts.size !== undefined ? parseSize(opts.size) : undefined;
  if (opts.memory && opts.dir) throw new InvalidArgumentError('--dir and --memory exclude each other');
  if (opts.memory) {
    if (size === undefined) throw new InvalidArgumentError('--memory needs --size');
    return new MemoryReplicaStore({ size, ...(opts.volumeId ? { volumeId: opts.volumeId } : {}), ...(opts.replicaId ? { replicaId: opts.replicaId } : {}) });
  }
  if (!opts.dir) throw new InvalidArgumentError('--dir is required (or --memory)');
  return openReplicaStore({
    dir: opts.dir,
    logger,
    registry,
    ...(size !== undefined ? { size } : {}),
    ...(opts.volumeId ? { volumeId: opts.volumeId } : {}),
    ...(opts.replicaId ? { replicaId: opts.replicaId } : {}),
  });
}

/**
 * Runs one replica until SIGINT/SIGTERM. Prints one JSON line on stdout once
 * every listener is bound, so a parent that passed port 0 learns the ports.
 */
async function serve(opts: ServeOptions, deps: ReplicaCommandDeps): Promise<void> {
  const logger = deps.createLogger();
  // Listen for signals before anything can announce readiness: a SIGTERM that
  // arrives between the ready line and the handler would kill the process
  // with the default action, skipping the orderly close.
  const shutdown = onShutdownSignal(logger);
  const data = parseHostPort(opts.listen ?? `:${DEFAULT_DATA_PORT}`, DEFAULT_DATA_PORT);
  const grpc = opts.grpc !== undefined ? parseHostPort(opts.grpc) : undefined;
  const http = opts.metrics !== undefined ? parseHostPort(opts.metrics) : undefined;
  const registry = createRegistry();
  const store = await openStore(opts, logger, registry);
  const server = await startReplicaServer({ store, logger, registry, data, ...(grpc ? { grpc } : {}), ...(http ? { http } : {}) }).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const info = store.info();
  const ready = { event: 'ready', replicaId: info.replicaId, volumeId: info.volumeId, state: info.state, dataPort: server.dataPort, grpcPort: server.grpcPort, httpPort: server.httpPort ?? null };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  await shutdown;
  // Closing may take a while (the disk store syncs and writes a last index
  // checkpoint); a second signal exits at once (signals.ts).
  await server.close();
  // Once everything is closed, no stray handle may keep the process alive; the
  // guard is unref'd, so a clean stop exits without waiting for it.
  setTimeout(() => {
    logger.error({ timeoutMs: EXIT_GUARD_MS }, 'process still alive after close, exiting');
    logger.flush();
    process.exit(1);
  }, EXIT_GUARD_MS).unref();
  logger.flush();
}

/**
 * `trireme replica`: with --dir (or --memory) it starts a replica server, as
 * does `trireme replica serve`. The command is returned so that the operator
 * sub-commands (`ls`, `add`, `rm`) register under it; without options and
 * without a sub-command it prints help.
 */
export function registerReplicaCommand(program: Command, deps: ReplicaCommandDeps): Command {
  const replica = addServeOptions(program.command('replica').description('run a replica server (--dir DIR --listen HOST:PORT), or manage replicas'));
  replica.action(async (opts: ServeOptions, cmd: Command) => {
    if (!opts.dir && !opts.memory) {
      cmd.help({ error: true });
      return;
    }
    await serve(opts, deps);
  });
  // Options may be given before `serve` too (`trireme replica --dir D serve`): both levels are merged.
  addServeOptions(replica.command('serve').description('run a replica server')).action(async (opts: ServeOptions) =>
    serve({ ...replica.opts<ServeOptions>(), ...opts }, deps),
  );
  return replica;
}
