import { randomUUID } from 'node:crypto';
import { status, type sendUnaryData, type ServerUnaryCall, type UntypedHandleCall, type UntypedServiceImplementation } from '@grpc/grpc-js';
import { Counter, Histogram, type Registry } from 'prom-client';
import { TriremeError } from '../errors';
import type { Logger } from '../logger';
import { CsiError, aborted, invalidArgument } from './errors';
import type { KeyedLocks } from './keyed-locks';
import type { CsiRequest } from './types';

/** One CSI method: its handler, the fields it cannot do without, and what it locks. */
export interface CallSpec {
  /** Fields that must be present and non-empty (strings non-empty, arrays non-empty, messages set). */
  readonly required?: readonly string[];
  /** The volume (or name) keys the call holds while it runs; another call on one of them gets ABORTED. */
  readonly lockKeys?: (request: CsiRequest) => string[];
  readonly handler: (request: CsiRequest) => Promise<object>;
}

export type ServiceSpec = Record<string, CallSpec>;

export interface WrapContext {
  readonly logger: Logger;
  readonly locks: KeyedLocks;
  readonly metrics?: CsiCallMetrics;
}

export interface CsiCallMetrics {
  readonly calls: Counter<'method' | 'code'>;
  readonly seconds: Histogram<'method'>;
}

export function createCsiCallMetrics(registry: Registry): CsiCallMetrics {
  return {
    calls: new Counter({ name: 'trireme_csi_calls_total', help: 'CSI calls by method and gRPC status', labelNames: ['method', 'code'], registers: [registry] }),
    seconds: new Histogram({
      name: 'trireme_csi_call_seconds',
      help: 'CSI call latency',
      labelNames: ['method'],
      buckets: [0.001, 0.01, 0.05, 0.1, 0.5, 1, 5, 15, 60],
      registers: [registry],
    }),
  };
}

/**
 * Copies a request for logging with every `secrets` map blanked. Every field the
 * CSI spec marks `csi_secret` is named `secrets`, so the name is the rule; the
 * keys stay visible because they tell an operator which credentials arrived.
 */
export function redactSecrets(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(redactSecrets);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value)) {
    if (key === 'secrets' && inner && typeof inner === 'object') {
      out[key] = Object.fromEntries(Object.keys(inner).map((k) => [k, '[redacted]']));
    } else {
      out[key] = redactSecrets(inner);
    }
  }
  return out;
}

function isPresent(value: unknown): boolean {
  if (value === undefined || value === null) return false;
  if (typeof value === 'string' || Array.isArray(value)) return value.length > 0;
  return true;
}

/** INVALID_ARGUMENT for the first missing required field (CSI: "This field is REQUIRED"). */
export function checkRequired(method: string, request: CsiRequest, fields: readonly string[]): void {
  for (const field of fields) {
    if (!isPresent(request[field])) throw invalidArgument(`${method}: ${field} is required`);
  }
}

/**
 * Turns any thrown value into what Kubernetes sees. CsiErrors keep their code and
 * message; other TriremeErrors were written for operators, so their message goes
 * out as INTERNAL; anything else may hold internals, so the client gets a
 * reference to the log line instead of the text (and never a stack trace).
 */
export function toGrpcError(err: unknown, ref: string): { code: status; details: string } {
  if (err instanceof CsiError) return { code: err.grpcCode, details: err.message };
  if (err instanceof TriremeError) return { code: status.INTERNAL, details: `${err.message} (${err.code})` };
  return { code: status.INTERNAL, details: `internal error, see the driver log for request ${ref}` };
}

async function runCall(method: string, spec: CallSpec, request: CsiRequest, ctx: WrapContext, log: Logger): Promise<object> {
  checkRequired(method, request, spec.required ?? []);
  const keys = spec.lockKeys ? spec.lockKeys(request) : [];
  const release = ctx.locks.tryAcquire(keys);
  if (!release) throw aborted(`${method}: an operation on ${keys.join(', ')} is already in progress`);
  try {
    return await spec.handler(request);
  } catch (err) {
    if (!(err instanceof CsiError)) log.error({ err }, 'csi call failed');
    throw err;
  } finally {
    release();
  }
}

/** Calls the CO repeats every few seconds: logged at debug so info stays readable. */
const POLLED_METHODS = new Set(['Probe', 'GetPluginInfo', 'GetPluginCapabilities', 'ControllerGetCapabilities', 'NodeGetCapabilities', 'NodeGetVolumeStats', 'GetCapacity']);

function wrapOne(method: string, spec: CallSpec, ctx: WrapContext): UntypedHandleCall {
  const level = POLLED_METHODS.has(method) ? 'debug' : 'info';
  return (call: ServerUnaryCall<CsiRequest, object>, callback: sendUnaryData<object>) => {
    const ref = randomUUID();
    const log = ctx.logger.child({ method, ref });
    const started = process.hrtime.bigint();
    log[level]({ request: redactSecrets(call.request) }, 'csi call');
    const finish = (code: status): void => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      ctx.metrics?.calls.inc({ method, code: status[code] });
      ctx.metrics?.seconds.observe({ method }, seconds);
    };
    runCall(method, spec, call.request, ctx, log).then(
      (response) => {
        finish(status.OK);
        log[level]({ response: redactSecrets(response) }, 'csi call done');
        callback(null, response);
      },
      (err: unknown) => {
        const { code, details } = toGrpcError(err, ref);
        finish(code);
        log.warn({ code: status[code], details }, 'csi call rejected');
        callback({ code, details });
      },
    );
  };
}

/** Builds a grpc-js service implementation where every method goes through the one wrapper. */
export function wrapService(spec: ServiceSpec, ctx: WrapContext): UntypedServiceImplementation {
  const impl: UntypedServiceImplementation = {};
  for (const [method, callSpec] of Object.entries(spec)) impl[method] = wrapOne(method, callSpec, ctx);
  return impl;
}
