import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { Logger } from '../../common/logger';
import { DEFAULT_MAX_PAYLOAD } from '../wire/protocol';
import { DataConnection, type ConnectionLimits } from './data-connection';
import type { ReplicaContext } from './replica-context';

export interface DataServerOptions extends Partial<ConnectionLimits> {
  readonly host: string;
  readonly port: number;
  /** Connections beyond this are refused (closed at once): a visible bound on per-connection state. */
  readonly maxConnections?: number;
  /** Where connections that open with an HTTP/2 preface (gRPC control) are handed over. */
  readonly control?: { host: string; port: number };
}

/** First byte of the HTTP/2 client preface "PRI * HTTP/2.0" (RFC 9113 section 3.4); frames start with 0x54. */
const HTTP2_FIRST_BYTE = 0x50;

/** Pipes a control connection to the local gRPC server, with backpressure both ways (pipe). */
function handOver(socket: Socket, first: Buffer, control: { host: string; port: number }, log: Logger): void {
  const wildcard = control.host === '0.0.0.0' || control.host === '::' || control.host === '';
  const upstream = connect({ host: wildcard ? '127.0.0.1' : control.host, port: control.port });
  upstream.write(first);
  socket.pipe(upstream);
  upstream.pipe(socket);
  const end = (err?: Error): void => {
    if (err) log.debug({ err }, 'control hand-over failed');
    socket.destroy();
    upstream.destroy();
  };
  socket.on('error', end).on('close', () => end());
  upstream.on('error', end).on('close', () => end());
}

export const DEFAULT_LIMITS: ConnectionLimits = {
  maxPayload: DEFAULT_MAX_PAYLOAD,
  maxInflightBytes: 64 * 1024 * 1024,
  maxInflightRequests: 1024,
};

/** The TCP listener of the data path; one DataConnection per accepted socket. */
export class DataServer {
  private constructor(
    private readonly server: Server,
    private readonly sockets: Set<Socket>,
    readonly address: AddressInfo,
    private readonly log: Logger,
  ) {}

  static async listen(ctx: ReplicaContext, options: DataServerOptions): Promise<DataServer> {
    const limits: ConnectionLimits = {
      maxPayload: options.maxPayload ?? DEFAULT_LIMITS.maxPayload,
      maxInflightBytes: options.maxInflightBytes ?? DEFAULT_LIMITS.maxInflightBytes,
      maxInflightRequests: options.maxInflightRequests ?? DEFAULT_LIMITS.maxInflightRequests,
    };
    const log = ctx.logger.child({ component: 'data' });
    const sockets = new Set<Socket>();
    const server = createServer((socket) => {
      if (sockets.size >= (options.maxConnections ?? 256)) {
        log.warn({ remote: socket.remoteAddress }, 'too many data connections, refusing');
        socket.destroy();
        return;
      }
      sockets.add(socket);
      ctx.metrics.connections.inc();
      ctx.metrics.connectionsAccepted.inc();
      socket.once('close', () => {
        sockets.delete(socket);
        ctx.metrics.connections.dec();
      });
      socket.once('data', (first: Buffer) => {
        if (first[0] === HTTP2_FIRST_BYTE && options.control !== undefined) {
          handOver(socket, first, options.control, log);
          return;
        }
        new DataConnection(socket, ctx, limits, log).feed(first);
      });
      socket.on('error', () => socket.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.error({ err }, 'data listener error'));
    return new DataServer(server, sockets, server.address() as AddressInfo, log);
  }

  get connectionCount(): number {
    return this.sockets.size;
  }

  /** Stops accepting, closes every connection (clients fail their pending requests) and waits. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await closed;
    this.log.info('data listener closed');
  }
}
