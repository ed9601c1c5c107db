import { once } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import { TriremeError, errorCode } from '../../common/errors';
import { StoreErrorCode } from '../store-types';
import type { LogRecord, ImageExtent } from '../store-types';
import {
  MAX_CONTROL_MESSAGE,
  controlService,
  extentFromMessage,
  extentToMessage,
  recordFromMessage,
  recordToMessage,
  statusToMessage,
  type ImageExtentMessage,
  type LogRecordMessage,
} from '../wire/control-proto';
import { toGrpcError } from './error-mapping';
import type { ReplicaContext } from './replica-context';

type Unary<Req, Res> = (request: Req) => Promise<Res>;

/**
 * The gRPC control service of one replica (proto/replica.proto). Every handler
 * goes through one wrapper that counts the call, logs failures and maps errors
 * with toGrpcError. The rebuild target side is here too, as client streams
 * (ApplyRecords/ApplyExtents): bulk catch-up then rides HTTP/2 flow control on
 * its own connection instead of queueing behind, or ahead of, live writes on the
 * latency-sensitive data path; "higher seq wins" makes the interleaving safe.
 */
export function controlHandlers(ctx: ReplicaContext): grpc.UntypedServiceImplementation {
  const store = ctx.store;
  const log = ctx.logger.child({ component: 'control' });
  const status = (): ReturnType<typeof statusToMessage> => statusToMessage(store.info());
  /** Fencing for control calls the store does not check itself (DESIGN.md invariant 3). */
  const fence = (epoch: number): void => {
    const current = store.info().epoch;
    if (!(epoch >= current)) throw new TriremeError(StoreErrorCode.StaleEpoch, `epoch ${epoch} is older than the replica's epoch ${current}`);
  };

  function unary<Req, Res>(method: string, fn: Unary<Req, Res>): grpc.handleUnaryCall<Req, Res> {
    return (call, callback) => {
      fn(call.request)
        .then((res) => {
          ctx.refreshEpoch();
          ctx.metrics.controlCalls.inc({ method, code: 'OK' });
          callback(null, res);
        })
        .catch((err: unknown) => {
          ctx.refreshEpoch();
          const mapped = toGrpcError(err);
          ctx.metrics.controlCalls.inc({ method, code: errorCode(err) ?? 'ERR_INTERNAL' });
          const level = mapped.code === grpc.status.INTERNAL ? 'error' : 'info';
          log[level]({ method, err }, 'control call failed');
          callback(mapped as grpc.ServiceError);
        });
    };
  }

  function serverStream<Req, Item, Msg>(method: string, source: (req: Req) => AsyncIterable<Item>, encode: (item: Item) => Msg): grpc.handleServerStreamingCall<Req, Msg> {
    return (call) => {
      (async () => {
        let cancelled = false;
        call.once('cancelled', () => (cancelled = true));
        for await (const item of source(call.request)) {
          if (cancelled) return;
          // grpc-js streams respect backpressure: write() false -> wait for 'drain'.
          if (!call.write(encode(item))) await Promise.race([once(call, 'drain'), once(call, 'cancelled')]);
        }
        if (!cancelled) call.end();
      })()
        .then(() => ctx.metrics.controlCalls.inc({ method, code: 'OK' }))
        .catch((err: unknown) => {
          ctx.metrics.controlCalls.inc({ method, code: errorCode(err) ?? 'ERR_INTERNAL' });
          log.info({ method, err }, 'export stream failed');
          // grpc-js turns an 'error' event on a server stream into the call's final status.
          call.emit('error', toGrpcError(err));
        });
    };
  }

  function clientStream<Msg, Item>(method: string, decode: (m: Msg) => Item, apply: (item: Item) => Promise<void>, bytesOf: (item: Item) => number): grpc.handleClientStreamingCall<Msg, unknown> {
    return (call, callback) => {
      (async () => {
        let count = 0;
        let bytes = 0;
        // Reading one message at a time applies backpressure to the sender.
        for await (const message of call as AsyncIterable<Msg>) {
          const item = decode(message);
          await apply(item);
          count++;
          bytes += bytesOf(item);
        }
        return { count, bytes, status: status() };
      })()
        .then((res) => {
          ctx.refreshEpoch();
          ctx.metrics.controlCalls.inc({ method, code: 'OK' });
          callback(null, res);
        })
        .catch((err: unknown) => {
          ctx.refreshEpoch();
          ctx.metrics.controlCalls.inc({ method, code: errorCode(err) ?? 'ERR_INTERNAL' });
          log.warn({ method, err }, 'apply stream failed');
          callback(toGrpcError(err) as grpc.ServiceError);
        });
    };
  }

  return {
    Status: unary('Status', async () => status()),
    SetEpoch: unary('SetEpoch', async (req: { epoch: number }) => {
      await store.setEpoch(req.epoch);
      log.info({ epoch: req.epoch }, 'epoch set');
      return status();
    }),
    CreateSnapshot: unary('CreateSnapshot', async (req: { name: string; epoch: number; seq: number }) => store.createSnapshot(req.name, req.epoch, req.seq)),
    DeleteSnapshot: unary('DeleteSnapshot', async (req: { name: string; epoch: number }) => {
      fence(req.epoch);
      await store.deleteSnapshot(req.name);
      return {};
    }),
    ListSnapshots: unary('ListSnapshots', async () => ({ snapshots: store.listSnapshots() })),
    RevertSnapshot: unary('RevertSnapshot', async (req: { name: string; epoch: number; seq: number }) => {
      await store.revertToSnapshot(req.name, req.epoch, req.seq);
      return status();
    }),
    Resize: unary('Resize', async (req: { size: number; epoch: number }) => {
      fence(req.epoch);
      await store.resize(req.size);
      return status();
    }),
    TruncateAfter: unary('TruncateAfter', async (req: { seq: number; epoch: number }) => {
      fence(req.epoch);
      await store.truncateAfter(req.seq);
      log.warn({ seq: req.seq }, 'log truncated');
      return status();
    }),
    Compact: unary('Compact', async (req: { minDeadRatio: number }) => store.compact(req.minDeadRatio > 0 ? { minDeadRatio: req.minDeadRatio } : {})),
    ExportRecords: serverStream('ExportRecords', (req: { afterSeq: number }) => store.exportRecords(req.afterSeq), recordToMessage),
    ExportImage: serverStream(
      'ExportImage',
      (req: { snapshot: string; base: string }) => store.exportImage({ ...(req.snapshot ? { snapshot: req.snapshot } : {}), ...(req.base ? { base: req.base } : {}) }),
      extentToMessage,
    ),
    ApplyRecords: clientStream<LogRecordMessage, LogRecord>(
      'ApplyRecords',
      (m) => (fence(m.fenceEpoch), recordFromMessage(m)),
      (r) => store.applyRecord(r),
      (r) => (r.type === 'write' ? r.data.length : 0),
    ),
    ApplyExtents: clientStream<ImageExtentMessage, ImageExtent>(
      'ApplyExtents',
      (m) => (fence(m.fenceEpoch), extentFromMessage(m)),
      (e) => store.applyExtent(e),
      (e) => (e.type === 'data' ? e.data.length : e.length),
    ),
  };
}

/** Starts a gRPC server with the control service on host:port (port 0 picks one). */
export async function startControlServer(ctx: ReplicaContext, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE, 'grpc.max_send_message_length': MAX_CONTROL_MESSAGE });
  server.addService(controlService().service, controlHandlers(ctx));
  const bound = await new Promise<number>((resolve, reject) => {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return {
    port: bound,
    close: () =>
      new Promise<void>((resolve) => {
        // Give in-flight calls a moment, then cut streams that would hold shutdown hostage.
        const timer = setTimeout(() => server.forceShutdown(), 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
