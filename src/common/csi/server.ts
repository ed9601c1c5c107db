import { mkdirSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Registry } from 'prom-client';
import { InvalidArgumentError } from '../errors';
import type { Logger } from '../logger';
import { createCsiCallMetrics, wrapService, type ServiceSpec } from './call-wrapper';
import { KeyedLocks } from './keyed-locks';
import { csiServices } from './proto';

/** `unix:///abs/path.sock` (the form kubelet and the sidecars pass) or a bare absolute path. */
export function parseCsiEndpoint(endpoint: string): string {
  const path = endpoint.startsWith('unix://') ? endpoint.slice('unix://'.length) : endpoint;
  if (!path.startsWith('/')) throw new InvalidArgumentError(`invalid CSI endpoint "${endpoint}": expected unix:///absolute/path`);
  return path;
}

export interface CsiServerOptions {
  readonly endpoint: string;
  readonly identity: ServiceSpec;
  readonly controller?: ServiceSpec;
  readonly node?: ServiceSpec;
  readonly logger: Logger;
  readonly registry?: Registry;
}

export interface RunningCsiServer {
  readonly socketPath: string;
  close(): Promise<void>;
}

/**
 * Serves the CSI services on a unix socket. A socket file left by a killed
 * process is removed first (kubelet re-registers on restart); any other kind of
 * file at that path is an error, never deleted.
 */
export async function startCsiServer(options: CsiServerOptions): Promise<RunningCsiServer> {
  const socketPath = parseCsiEndpoint(options.endpoint);
  mkdirSync(dirname(socketPath), { recursive: true });
  try {
    if (!statSync(socketPath).isSocket()) throw new InvalidArgumentError(`CSI endpoint ${socketPath} exists and is not a socket`);
    rmSync(socketPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  const services = csiServices();
  // One lock set for the process; each service names its keys apart
  // (`volume:`, `node-volume:`), so a controller expand and a node expand of
  // the same volume, which the CO legitimately overlaps, do not exclude each other.
  const ctx = { logger: options.logger, locks: new KeyedLocks(), metrics: options.registry ? createCsiCallMetrics(options.registry) : undefined };
  const server = new Server();
  server.addService(services.Identity, wrapService(options.identity, ctx));
  if (options.controller) server.addService(services.Controller, wrapService(options.controller, ctx));
  if (options.node) server.addService(services.Node, wrapService(options.node, ctx));
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${socketPath}`, ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve()));
  });
  options.logger.info({ socketPath, controller: Boolean(options.controller), node: Boolean(options.node) }, 'csi server listening');
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.tryShutdown(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      }),
  };
}
