import type { Logger } from '../../common/logger';
import type { Registry } from '../../common/metrics';
import { startHttpEndpoint } from '../../common/http-endpoint';
import { IdleCollector } from '../../common/idle-collector';
import type { ReplicaStore } from '../store-types';
import { startControlServer } from './control-service';
import { DataServer, type DataServerOptions } from './data-server';
import { ReplicaContext } from './replica-context';
import { ServerMetrics } from './server-metrics';

export interface ReplicaServerOptions {
  readonly store: ReplicaStore;
  readonly logger: Logger;
  readonly registry: Registry;
  readonly data: DataServerOptions;
  /** A separate gRPC control address; omitted: loopback only, reached through the data port. */
  readonly grpc?: { host: string; port: number };
  /** `/metrics` and `/healthz`; omitted: none. */
  readonly http?: { host: string; port: number };
}

export interface ReplicaServer {
  readonly dataPort: number;
  /** The gRPC listener's port (also reachable through dataPort). */
  readonly grpcPort: number;
  readonly httpPort?: number;
  readonly dataServer: DataServer;
  /** Stops the listeners, then closes the store. */
  close(): Promise<void>;
}

/**
 * One replica process's services over one store: the data path, the gRPC
 * control service and the management HTTP endpoint. The store is opened by the
 * caller and closed here, after every listener has stopped.
 */
export async function startReplicaServer(options: ReplicaServerOptions): Promise<ReplicaServer> {
  const { store } = options;
  const info = store.info();
  const logger = options.logger.child({ replica: info.replicaId, volume: info.volumeId });
  const ctx = new ReplicaContext(store, new ServerMetrics(options.registry, store), logger);
  const closers: Array<() => Promise<void>> = [];
  try {
    // The control service always runs: on its own address when asked, else on
    // loopback only, reached through the data port's protocol sniff.
    const grpcAddress = options.grpc ?? { host: '127.0.0.1', port: 0 };
    const control = await startControlServer(ctx, grpcAddress.host, grpcAddress.port);
    closers.push(() => control.close());
    const dataServer = await DataServer.listen(ctx, { ...options.data, control: { host: grpcAddress.host, port: control.port } });
    closers.push(() => dataServer.close());
    const http = options.http
      ? await startHttpEndpoint({
          ...options.http,
          registry: options.registry,
          logger,
          health: () => {
            const current = store.info();
            return current.state === 'ok' ? { healthy: true } : { healthy: false, reason: current.error ?? 'replica store in error state' };
          },
        })
      : undefined;
    if (http) closers.push(() => http.close());
    const idle = new IdleCollector({ logger, registry: options.registry, metricName: 'trireme_replica_idle_collections_total', role: 'replica' });
    closers.push(async () => idle.close());
    logger.info({ dataPort: dataServer.address.port, grpcPort: control.port, httpPort: http?.address.port, epoch: info.epoch, lastSeq: info.lastSeq }, 'replica serving');
    return {
      dataPort: dataServer.address.port,
      grpcPort: control.port,
      ...(http ? { httpPort: http.address.port } : {}),
      dataServer,
      close: async () => {
        for (const close of closers.reverse()) await close();
        await store.close();
        logger.info('replica stopped');
      },
    };
  } catch (err) {
    for (const close of closers.reverse()) await close().catch(() => undefined);
    throw err;
  }
}
