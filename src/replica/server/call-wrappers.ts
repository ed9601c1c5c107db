import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { errorCode } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { toGrpcError } from './error-mapping';
import type { ReplicaContext } from './replica-context';

/**
 * The wrappers every control handler goes through: count the call by method
 * and outcome, refresh the cached epoch (any call may have moved it), log
 * failures (INTERNAL at error level, expected refusals at info) and map errors
 * with toGrpcError, the one place that chooses gRPC status codes.
 */
export class CallWrappers {
  constructor(
    private readonly ctx: ReplicaContext,
    private readonly log: Logger,
  ) {}

  private done(method: string, err?: unknown): void {
    this.ctx.refreshEpoch();
    this.ctx.metrics.controlCalls.inc({ method, code: err === undefined ? 'OK' : (errorCode(err) ?? 'ERR_INTERNAL') });
    if (err !== undefined) {
      const level = toGrpcError(err).code === grpc.status.INTERNAL ? 'error' : 'info';
      this.log[level]({ method, err }, 'control call failed');
    }
  }

  unary<Req, Res>(method: string, fn: (request: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => this.answer(method, fn(call.request), callback);
  }

  /** Answers a call with one reply (unary or client stream) once `work` settles. */
  private answer<Res>(method: string, work: Promise<Res>, callback: grpc.sendUnaryData<Res>): void {
    work.then(
      (res) => {
        this.done(method);
        callback(null, res);
      },
      (err: unknown) => {
        this.done(method, err);
        callback(toGrpcError(err) as grpc.ServiceError);
      },
    );
  }

  /** A server stream that writes at the pace the client reads: write() false -> wait for 'drain'. */
  serverStream<Req, Item, Msg>(method: string, source: (req: Req) => AsyncIterable<Item>, encode: (item: Item) => Msg): grpc.handleServerStreamingCall<Req, Msg> {
    return (call) => {
      (async () => {
        let cancelled = false;
        call.once('cancelled', () => (cancelled = true));
        for await (const item of source(call.request)) {
          if (cancelled) return;
          if (!call.write(encode(item))) await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
        }
        if (!cancelled) call.end();
      })().then(
        () => this.done(method),
        (err: unknown) => {
          this.done(method, err);
          // grpc-js turns an 'error' event on a server stream into the call's final status.
          call.emit('error', toGrpcError(err));
        },
      );
    };
  }

  /** A client stream consumed one message at a time, so the sender is paced by the store. */
  clientStream<Msg, Item>(
    method: string,
    decode: (m: Msg) => Item,
    apply: (item: Item) => Promise<void>,
    bytesOf: (item: Item) => number,
    finish: (count: number, bytes: number) => object,
  ): grpc.handleClientStreamingCall<Msg, unknown> {
    return (call, callback) => {
      const consume = async (): Promise<object> => {
        let count = 0;
        let bytes = 0;
        for await (const message of call as AsyncIterable<Msg>) {
          const item = decode(message);
          await apply(item);
          count++;
          bytes += bytesOf(item);
        }
        return finish(count, bytes);
      };
      this.answer(method, consume(), callback);
    };
  }
}
