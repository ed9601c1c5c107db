import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TriremeError, errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';

/** dist/src/controller/management -> the package root's proto/ folder. */
export const PROTO_DIR = join(__dirname, '..', '..', '..', '..', 'proto');

/**
 * Loads a .proto file from proto/. uint64 fields become JS numbers (sizes and
 * seqs stay below 2^53, see src/replica/store-types.ts), fields lowerCamel.
 */
export function loadProto(file: string): grpc.GrpcObject {
  const definition = protoLoader.loadSync(join(PROTO_DIR, file), {
    keepCase: false,
    longs: Number,
    enums: String,
    defaults: true,
    oneofs: true,
    includeDirs: [PROTO_DIR],
  });
  return grpc.loadPackageDefinition(definition);
}

/** Walks `a.b.c` in a loaded package. */
export function lookup<T>(root: grpc.GrpcObject, path: string): T {
  let node: unknown = root;
  for (const part of path.split('.')) node = (node as Record<string, unknown>)[part];
  if (!node) throw new Error(`proto path ${path} not found`);
  return node as T;
}

/** Metadata key carrying the stable Trireme error code next to the gRPC status. */
export const CODE_METADATA_KEY = 'trireme-code';

const STATUS_BY_CODE: Record<string, grpc.status> = {
  ERR_INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  ERR_MISALIGNED: grpc.status.INVALID_ARGUMENT,
  ERR_NOT_FOUND: grpc.status.NOT_FOUND,
  ERR_VOLUME_NOT_FOUND: grpc.status.NOT_FOUND,
  ERR_SNAPSHOT_NOT_FOUND: grpc.status.NOT_FOUND,
  ERR_REPLICA_NOT_FOUND: grpc.status.NOT_FOUND,
  ERR_ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  ERR_OUT_OF_RANGE: grpc.status.OUT_OF_RANGE,
  ERR_NO_SPACE: grpc.status.RESOURCE_EXHAUSTED,
  ERR_BUSY: grpc.status.ABORTED,
  ERR_IN_USE: grpc.status.FAILED_PRECONDITION,
  ERR_FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  ERR_DEVICE_UNAVAILABLE: grpc.status.UNAVAILABLE,
  ERR_UNAVAILABLE: grpc.status.UNAVAILABLE,
  ERR_STALE_EPOCH: grpc.status.FAILED_PRECONDITION,
  ERR_UNIMPLEMENTED: grpc.status.UNIMPLEMENTED,
  ERR_TIMEOUT: grpc.status.DEADLINE_EXCEEDED,
  ERR_MANAGER_NOT_RUNNING: grpc.status.UNAVAILABLE,
  ERR_VOLUME_HAS_SNAPSHOTS: grpc.status.FAILED_PRECONDITION,
};

const CODE_BY_STATUS: Partial<Record<grpc.status, string>> = {
  [grpc.status.INVALID_ARGUMENT]: 'ERR_INVALID_ARGUMENT',
  [grpc.status.NOT_FOUND]: 'ERR_NOT_FOUND',
  [grpc.status.ALREADY_EXISTS]: 'ERR_ALREADY_EXISTS',
  [grpc.status.OUT_OF_RANGE]: 'ERR_OUT_OF_RANGE',
  [grpc.status.RESOURCE_EXHAUSTED]: 'ERR_NO_SPACE',
  [grpc.status.ABORTED]: 'ERR_BUSY',
  [grpc.status.FAILED_PRECONDITION]: 'ERR_FAILED_PRECONDITION',
  [grpc.status.UNAVAILABLE]: 'ERR_UNAVAILABLE',
  [grpc.status.DEADLINE_EXCEEDED]: 'ERR_TIMEOUT',
  [grpc.status.UNIMPLEMENTED]: 'ERR_UNIMPLEMENTED',
};

/**
 * The one place that turns a thrown error into a gRPC status (STYLE.md, after
 * grpc-js). Errors without a known code become INTERNAL with a generic
 * message: internals (stack traces, paths) are logged, not sent.
 */
export function toServiceError(err: unknown, logger: Logger, method: string): Partial<grpc.ServiceError> {
  const code = errorCode(err);
  const status = code !== undefined ? STATUS_BY_CODE[code] : undefined;
  const metadata = new grpc.Metadata();
  if (status === undefined) {
    logger.error({ err, method }, 'management call failed');
    metadata.set(CODE_METADATA_KEY, 'ERR_INTERNAL');
    return { code: grpc.status.INTERNAL, details: `internal error in ${method}`, metadata };
  }
  logger.info({ method, code, reason: (err as Error).message }, 'management call refused');
  metadata.set(CODE_METADATA_KEY, code as string);
  return { code: status, details: (err as Error).message, metadata };
}

/** The client side: a gRPC failure back into a TriremeError with the server's stable code. */
export function fromServiceError(err: grpc.ServiceError, target: string): TriremeError {
  const sent = err.metadata?.get(CODE_METADATA_KEY)?.[0];
  const code = typeof sent === 'string' ? sent : (CODE_BY_STATUS[err.code] ?? 'ERR_INTERNAL');
  const message = err.code === grpc.status.UNAVAILABLE && typeof sent !== 'string' ? `${target} is not reachable: ${err.details}` : err.details || err.message;
  return new TriremeError(code, message, { cause: err });
}

type UnaryHandler<Req, Res> = (request: Req) => Promise<Res>;

/** Wraps an async handler as a grpc-js unary handler with the error mapping above. */
export function unary<Req, Res>(logger: Logger, method: string, handler: UnaryHandler<Req, Res>): grpc.handleUnaryCall<Req, Res> {
  return (call, callback) => {
    handler(call.request).then(
      (response) => callback(null, response),
      (err: unknown) => callback(toServiceError(err, logger, method) as grpc.ServiceError),
    );
  };
}

/** A typed promise over one unary method of a grpc-js client. */
export function callUnary<Res>(client: grpc.Client, method: string, request: unknown, timeoutMs: number, target: string): Promise<Res> {
  const fn = (client as unknown as Record<string, (req: unknown, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void>)[method];
  return new Promise<Res>((resolve, reject) => {
    fn.call(client, request, { deadline: Date.now() + timeoutMs }, (err, response) => {
      if (err) reject(fromServiceError(err, target));
      else resolve(response);
    });
  });
}

/** Binds a grpc-js server; resolves with the bound port (0 for unix sockets). */
export function bindServer(server: grpc.Server, address: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port)));
  });
}

/** Graceful shutdown bounded in time: in-flight calls get `graceMs`, then are cut. */
export function shutdownServer(server: grpc.Server, graceMs = 2000): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
