import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';
import { startHttpEndpoint } from '../common/http-endpoint';
import { parseHostPort } from '../common/host-port';
import { IdleCollector } from '../common/idle-collector';
import type { Logger } from '../common/logger';
import { createRegistry } from '../common/metrics';
import { parseSize } from '../common/size';
import { NetworkReplicaLink } from '../controller/engine/network-replica-link';
import { EngineHost } from '../controller/management/engine-host';
import { ManagementServer } from '../controller/management/management-server';
import { IscsiServer } from '../iscsi/server';
import { onShutdownSignal } from './signals';

export const IQN_PREFIX = 'iqn.2026-11.io.trireme:';

interface ControllerOptions {
  volume: string;
  size: string;
  replica: string[];
  portal: string;
  iqn?: string;
  chapUser?: string;
  chapSecret?: string;
  management: string;
  metrics: string;
  opTimeout: string;
}

const collect = (value: string, previous: string[]): string[] => [...previous, value];

const hostPort = (a: { host: string; port: number }): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);

/**
 * `trireme controller`: one volume. Composes the volume engine over network
 * links to its replicas, serves it as LUN 0 of an iSCSI target, and serves
 * the management API (proto/controller.proto) and /metrics + /healthz.
 */
export function registerControllerCommand(program: Command, deps: { createLogger(): Logger }): Command {
  return program
    .command('controller')
    .description('serve one replicated volume over iSCSI (one controller process per volume)')
    .requiredOption('--volume <name>', 'volume name (also the IQN suffix)')
    .requiredOption('--size <size>', 'volume size, e.g. 10G; a larger volume is never shrunk')
    .requiredOption('--replica <host:port>', 'a replica data address; repeat for each replica (1-5)', collect, [])
    .option('--portal <host:port>', 'iSCSI portal to listen on', '0.0.0.0:3260')
    .option('--iqn <iqn>', `target name (default ${IQN_PREFIX}<volume>)`)
    .option('--chap-user <user>', 'require one-way CHAP with this user name')
    .option('--chap-secret <secret>', 'CHAP secret (also TRIREME_CHAP_SECRET)')
    .option('--management <host:port>', 'management gRPC API address', '127.0.0.1:9500')
    .option('--metrics <host:port>', 'address of /metrics and /healthz', '127.0.0.1:9600')
    .option('--op-timeout <ms>', 'a replica that does not answer within this time leaves the write set', '4000')
    .action(async (options: ControllerOptions) => runController(options, deps.createLogger()));
}

function parseOptions(o: ControllerOptions) {
  if (o.replica.length < 1 || o.replica.length > 5) throw new InvalidArgumentError(`a volume has 1 to 5 replicas, got ${o.replica.length} --replica`);
  const replicas = o.replica.map((r) => hostPort(parseHostPort(r, 9700)));
  if (new Set(replicas).size !== replicas.length) throw new InvalidArgumentError('the same --replica is given twice');
  const chapSecret = o.chapSecret ?? process.env.TRIREME_CHAP_SECRET;
  if ((o.chapUser === undefined) !== (chapSecret === undefined)) throw new InvalidArgumentError('--chap-user and --chap-secret go together');
  const opTimeoutMs = Number(o.opTimeout);
  if (!Number.isInteger(opTimeoutMs) || opTimeoutMs <= 0) throw new InvalidArgumentError(`invalid --op-timeout "${o.opTimeout}"`);
  return {
    size: parseSize(o.size),
    replicas,
    portal: parseHostPort(o.portal, 3260),
    management: parseHostPort(o.management),
    metrics: parseHostPort(o.metrics),
    iqn: o.iqn ?? IQN_PREFIX + o.volume,
    chap: o.chapUser !== undefined && chapSecret !== undefined ? { user: o.chapUser, secret: chapSecret } : undefined,
    opTimeoutMs,
  };
}

async function runController(raw: ControllerOptions, rootLogger: Logger): Promise<void> {
  const o = parseOptions(raw);
  const logger = rootLogger.child({ volume: raw.volume });
  // Gathering a quorum may wait on nothing but the engine's unref'd timers
  // (every replica down): this keeps the process alive until it is told to stop.
  const keepAlive = setInterval(() => undefined, 60_000);
  const registry = createRegistry({ labels: { role: 'controller' } });
  // Frees what a burst of I/O leaves behind once the volume goes quiet (needs node --expose-gc, as the orchestrators start it).
  const idle = new IdleCollector({ logger, registry, metricName: 'trireme_controller_idle_collections_total', role: 'controller' });
  const iscsi = new IscsiServer({ logger, registry });
  const volume = await EngineHost.open({
    volume: raw.volume,
    addresses: o.replicas,
    connect: (address) => new NetworkReplicaLink({ address, logger, timeoutMs: o.opTimeoutMs }),
    // The engine adds the volume field to its own child logger.
    logger: rootLogger,
    registry,
    tuning: { opTimeoutMs: o.opTimeoutMs },
    iqn: o.iqn,
    portal: hostPort(o.portal),
    sessions: () => iscsi.activeSessions(),
  });
  if (volume.size() < o.size) await volume.expand(o.size);
  else if (volume.size() > o.size) logger.warn({ size: volume.size(), requested: o.size }, 'volume is larger than --size; keeping its size');

  iscsi.addTarget({ iqn: o.iqn, luns: [{ lun: 0, device: volume }], chap: o.chap });
  const portal = await iscsi.listen(o.portal.host, o.portal.port);
  const management = new ManagementServer(volume, logger);
  const managementAddress = await management.listen(o.management.host, o.management.port);
  const http = await startHttpEndpoint({
    ...o.metrics,
    registry,
    logger,
    health: () => {
      const state = volume.status().state;
      return state === 'offline' ? { healthy: false, reason: 'volume offline: fewer than a quorum of replicas in service, writes are refused' } : { healthy: true };
    },
  });
  const ready = { event: 'ready', volume: raw.volume, iqn: o.iqn, portal: hostPort(portal), management: hostPort(managementAddress), metrics: hostPort({ host: o.metrics.host, port: http.address.port }) };
  process.stdout.write(`${JSON.stringify(ready)}\n`);
  logger.info(ready, 'controller serving');

  await onShutdownSignal(logger);
  idle.close();
  await iscsi.close();
  await management.close();
  await http.close();
  await volume.close();
  clearInterval(keepAlive);
  logger.flush();
}
