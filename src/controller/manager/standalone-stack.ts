import { mkdir, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { TriremeError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { reapOrphans, STACK_ENV } from '../orchestrator/orphans';
import { LocalOrchestrator, type PortBases, type VolumeDescription } from '../orchestrator/local-orchestrator';
import type { BackoffPolicy } from '../orchestrator/supervisor';
import type { TriremeInvocation } from '../orchestrator/volume-processes';
import { VolumeRecords } from '../orchestrator/volume-records';
import { ManagerServer } from './manager-service';

export const DEMO_VOLUME = { name: 'demo', sizeBytes: 1024 ** 3, replicaCount: 3 };

export interface StackOptions {
  readonly dataDir: string;
  readonly logger: Logger;
  readonly trireme: TriremeInvocation;
  /** Address children bind and dial; loopback by default. */
  readonly host?: string;
  readonly ports?: Partial<PortBases>;
  /** Create the demo volume when the data directory is new (default true). */
  readonly demo?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly backoff?: BackoffPolicy;
  readonly readyTimeoutMs?: number;
}

export interface Stack {
  readonly orchestrator: LocalOrchestrator;
  /** gRPC target of the manager API. */
  readonly managerAddress: string;
  readonly socketPath: string;
  /** The demo volume when this start created it. */
  readonly demo: VolumeDescription | undefined;
  close(): Promise<void>;
}

export function managerSocketPath(dataDir: string): string {
  return join(dataDir, 'manager.sock');
}

/** Whether something accepts connections on a unix socket (a live manager). */
function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The standalone stack of `trireme up`: volume records in LevelDB under
 * DIR/db, the local orchestrator with its children, and the manager API on
 * DIR/manager.sock. The demo volume is made once per data directory: deleting
 * it is the operator's choice and it does not come back.
 */
export async function startStack(options: StackOptions): Promise<Stack> {
  const { dataDir, logger } = options;
  await mkdir(join(dataDir, 'volumes'), { recursive: true });
  const socketPath = managerSocketPath(dataDir);
  if (await socketAlive(socketPath)) throw new TriremeError('ERR_ALREADY_RUNNING', `a manager is already running on ${socketPath}`);
  const records = await VolumeRecords.open(join(dataDir, 'db'));
  // Past the database lock no other manager runs here: whatever still carries this stack's mark is an orphan.
  const orphans = await reapOrphans(dataDir);
  if (orphans.length > 0) logger.warn({ pids: orphans }, 'ended processes left by a previous manager');
  const orchestrator = new LocalOrchestrator({
    dataDir,
    host: options.host ?? '127.0.0.1',
    trireme: options.trireme,
    env: { ...(options.env ?? process.env), [STACK_ENV]: dataDir },
    backoff: options.backoff,
    records,
    logger,
    ports: options.ports,
    readyTimeoutMs: options.readyTimeoutMs,
  });
  const server = new ManagerServer(orchestrator, logger);
  const close = async (): Promise<void> => {
    await server.close();
    await orchestrator.close();
    await records.close();
    await rm(socketPath, { force: true });
  };
  try {
    await orchestrator.start();
    // A socket file left by a killed manager would make bind fail with EADDRINUSE.
    await rm(socketPath, { force: true });
    await server.listen(`unix://${socketPath}`);
    let demo: VolumeDescription | undefined;
    if ((options.demo ?? true) && (await records.getMeta('demo-created')) === undefined) {
      await records.putMeta('demo-created', new Date().toISOString());
      if ((await records.get(DEMO_VOLUME.name)) === undefined) demo = await orchestrator.createVolume(DEMO_VOLUME);
    }
    logger.info({ dataDir, socket: socketPath }, 'manager ready');
    return { orchestrator, managerAddress: `unix://${socketPath}`, socketPath, demo, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}
