import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger';

export interface HealthReport {
  healthy: boolean;
  /** Why the process is unhealthy, shown to the prober. */
  reason?: string;
}

/**
 * The per-process management HTTP endpoint: `/metrics` in Prometheus text
 * format and `/healthz` (200 when healthy, 503 with the reason otherwise).
 */
export async function startHttpEndpoint(options: {
  host: string;
  port: number;
  registry: Registry;
  health?: () => HealthReport;
  logger: Logger;
}): Promise<{ server: Server; address: AddressInfo; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    if (path === '/metrics') {
      options.registry
        .metrics()
        .then((body) => res.writeHead(200, { 'content-type': options.registry.contentType }).end(body))
        .catch((err: unknown) => {
          options.logger.warn({ err }, 'metrics collection failed');
          res.writeHead(500).end();
        });
      return;
    }
    if (path === '/healthz') {
      const report = options.health ? options.health() : { healthy: true };
      res.writeHead(report.healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(report.healthy ? 'ok\n' : `${report.reason ?? 'unhealthy'}\n`);
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return {
    server,
    address: server.address() as AddressInfo,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
