import * as grpc from '@grpc/grpc-js';
import { TriremeError } from '../../common/errors';
import { StoreErrorCode } from '../store-types';
import type { EpochRun, LogRecord, ImageExtent } from '../store-types';
import {
  CONTROL_KEEPALIVE,
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
import { CallWrappers } from './call-wrappers';
import type { ReplicaContext } from './replica-context';

/**
 * The gRPC control service of one replica (proto/replica.proto). Every handler
 * goes through CallWrappers (counting, logging, error mapping). The rebuild
 * target side is here too, as client streams (ApplyRecords/ApplyExtents): bulk catch-up then rides HTTP/2 flow control on
 * its own connection instead of queueing behind, or ahead of, live writes on the
 * latency-sensitive data path; "higher seq wins" makes the interleaving safe.
 */
export function controlHandlers(ctx: ReplicaContext): grpc.UntypedServiceImplementation {
  const store = ctx.store;
  const log = ctx.logger.child({ component: 'control' });
  const w = new CallWrappers(ctx, log);
  const status = (): ReturnType<typeof statusToMessage> => statusToMessage(store.info());
  /** Fencing for control calls the store does not check itself (DESIGN.md invariant 3). */
  const fence = (epoch: number): void => {
    const current = store.info().epoch;
    if (!(epoch >= current)) throw new TriremeError(StoreErrorCode.StaleEpoch, `epoch ${epoch} is older than the replica's epoch ${current}`);
  };

  return {
    Status: w.unary('Status', async () => status()),
    SetEpoch: w.unary('SetEpoch', async (req: { epoch: number }) => {
      await store.setEpoch(req.epoch);
      log.info({ epoch: req.epoch }, 'epoch set');
      return status();
    }),
    CreateSnapshot: w.unary('CreateSnapshot', async (req: { name: string; epoch: number; seq: number }) => store.createSnapshot(req.name, req.epoch, req.seq)),
    DeleteSnapshot: w.unary('DeleteSnapshot', async (req: { name: string; epoch: number }) => {
      fence(req.epoch);
      await store.deleteSnapshot(req.name);
      return {};
    }),
    ListSnapshots: w.unary('ListSnapshots', async () => ({ snapshots: store.listSnapshots() })),
    RevertSnapshot: w.unary('RevertSnapshot', async (req: { name: string; epoch: number; seq: number }) => {
      await store.revertToSnapshot(req.name, req.epoch, req.seq);
      return status();
    }),
    Resize: w.unary('Resize', async (req: { size: number; epoch: number }) => {
      fence(req.epoch);
      await store.resize(req.size);
      return status();
    }),
    TruncateAfter: w.unary('TruncateAfter', async (req: { seq: number; epoch: number }) => {
      fence(req.epoch);
      await store.truncateAfter(req.seq);
      log.warn({ seq: req.seq }, 'log truncated');
      return status();
    }),
    Reset: w.unary('Reset', async (req: { epoch: number }) => {
      fence(req.epoch);
      await store.reset();
      log.warn('replica emptied for a full rebuild');
      return status();
    }),
    BeginRebuild: w.unary('BeginRebuild', async (req: { base: number; epoch: number }) => {
      fence(req.epoch);
      await store.beginRebuild(req.base);
      return status();
    }),
    FinishRebuild: w.unary('FinishRebuild', async (req: { upTo: number; epoch: number; runs: EpochRun[] }) => {
      fence(req.epoch);
      await store.finishRebuild(req.upTo, req.runs ?? []);
      return status();
    }),
    Compact: w.unary('Compact', async (req: { minDeadRatio: number }) => store.compact(req.minDeadRatio > 0 ? { minDeadRatio: req.minDeadRatio } : {})),
    ExportRecords: w.serverStream('ExportRecords', (req: { afterSeq: number }) => store.exportRecords(req.afterSeq), recordToMessage),
    ExportImage: w.serverStream(
      'ExportImage',
      (req: { snapshot: string; base: string }) => store.exportImage({ ...(req.snapshot ? { snapshot: req.snapshot } : {}), ...(req.base ? { base: req.base } : {}) }),
      extentToMessage,
    ),
    ApplyRecords: w.clientStream<LogRecordMessage, LogRecord>(
      'ApplyRecords',
      (m) => (fence(m.fenceEpoch), recordFromMessage(m)),
      (r) => store.applyRecord(r),
      (r) => (r.type === 'write' ? r.data.length : 0),
      (count, bytes) => ({ count, bytes, status: status() }),
    ),
    ApplyExtents: w.clientStream<ImageExtentMessage, ImageExtent>(
      'ApplyExtents',
      (m) => (fence(m.fenceEpoch), extentFromMessage(m)),
      (e) => store.applyExtent(e),
      (e) => (e.type === 'data' ? e.data.length : e.length),
      (count, bytes) => ({ count, bytes, status: status() }),
    ),
  };
}

/** Starts a gRPC server with the control service on host:port (port 0 picks one). */
export async function startControlServer(ctx: ReplicaContext, host: string, port: number): Promise<{ port: number; close(): Promise<void> }> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_CONTROL_MESSAGE, 'grpc.max_send_message_length': MAX_CONTROL_MESSAGE, ...CONTROL_KEEPALIVE });
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
