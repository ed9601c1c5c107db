import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32c } from '@node-rs/crc32';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { TriremeError } from '../../common/errors';
import type { ImageExtent, LogRecord, ReplicaInfo, SnapshotInfo } from '../store-types';

/**
 * The gRPC control schema (proto/replica.proto) and the conversions between its
 * messages and the store's types, shared by the control service and its client
 * so both ends agree on one mapping. Loaded at run time with proto-loader:
 * camelCase fields, 64-bit integers as numbers (all are safe integers here).
 */
export const CONTROL_SERVICE = 'trireme.replica.v1.ReplicaControl';
/** Rebuild messages carry up to one store record or extent; leave room above the largest write. */
export const MAX_CONTROL_MESSAGE = 64 * 1024 * 1024;
/**
 * HTTP/2 keepalive for both ends: export and apply streams carry no deadline
 * (a full rebuild may take hours), so a peer that vanishes without a reset
 * (cable pulled, host frozen) is detected by unanswered pings instead.
 */
export const CONTROL_KEEPALIVE = { 'grpc.keepalive_time_ms': 15_000, 'grpc.keepalive_timeout_ms': 10_000 } as const;
/** Trailer that carries a failure's stable code next to the gRPC status. */
export const ERROR_CODE_KEY = 'trireme-error-code';

function findProto(): string {
  // From src/replica/wire or dist/src/replica/wire up to the package root.
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const candidate = join(dir, 'proto', 'replica.proto');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new TriremeError('ERR_NOT_FOUND', 'proto/replica.proto not found above ' + __dirname);
}

let cached: grpc.ServiceClientConstructor | undefined;

/** The ReplicaControl service definition and client constructor (loaded once). */
export function controlService(): grpc.ServiceClientConstructor {
  if (cached) return cached;
  const definition = protoLoader.loadSync(findProto(), { keepCase: false, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { trireme: { replica: { v1: { ReplicaControl: grpc.ServiceClientConstructor } } } };
  cached = pkg.trireme.replica.v1.ReplicaControl;
  return cached;
}

export interface ReplicaStatusMessage {
  replicaId: string;
  volumeId: string;
  state: string;
  error: string;
  epoch: number;
  lastSeq: number;
  durableSeq: number;
  size: number;
  space: { totalBytes: number; liveBytes: number; reclaimableBytes: number; segments: number };
  runs?: { epoch: number; from: number; to: number }[];
  rebuilding?: boolean;
  rebuildBase?: number;
}

export interface LogRecordMessage {
  type: string;
  epoch: number;
  seq: number;
  offset: number;
  length: number;
  data: Buffer;
  dataCrc32c: number;
  name: string;
  fenceEpoch: number;
}

export interface ImageExtentMessage {
  type: string;
  offset: number;
  length: number;
  data: Buffer;
  dataCrc32c: number;
  seq: number;
  fenceEpoch: number;
}

export function statusToMessage(info: ReplicaInfo): ReplicaStatusMessage {
  return {
    replicaId: info.replicaId,
    volumeId: info.volumeId,
    state: info.state === 'ok' ? 'REPLICA_STATE_OK' : 'REPLICA_STATE_ERROR',
    error: info.error ?? '',
    epoch: info.epoch,
    lastSeq: info.lastSeq,
    durableSeq: info.durableSeq,
    size: info.size,
    space: { ...info.space },
    runs: info.runs.map((r) => ({ epoch: r.epoch, from: r.from, to: r.to })),
    rebuilding: info.rebuildBase !== null,
    rebuildBase: info.rebuildBase ?? 0,
  };
}

export function statusFromMessage(m: ReplicaStatusMessage): ReplicaInfo {
  return {
    replicaId: m.replicaId,
    volumeId: m.volumeId,
    size: m.size,
    epoch: m.epoch,
    lastSeq: m.lastSeq,
    durableSeq: m.durableSeq,
    state: m.state === 'REPLICA_STATE_OK' ? 'ok' : 'error',
    ...(m.error ? { error: m.error } : {}),
    space: { totalBytes: m.space?.totalBytes ?? 0, liveBytes: m.space?.liveBytes ?? 0, reclaimableBytes: m.space?.reclaimableBytes ?? 0, segments: m.space?.segments ?? 0 },
    runs: (m.runs ?? []).map((r) => ({ epoch: r.epoch, from: r.from, to: r.to })),
    rebuildBase: m.rebuilding ? (m.rebuildBase ?? 0) : null,
  };
}

export function snapshotFromMessage(m: SnapshotInfo): SnapshotInfo {
  return { name: m.name, seq: m.seq, epoch: m.epoch, createdAt: m.createdAt, sizeBytes: m.sizeBytes, exclusiveBytes: m.exclusiveBytes };
}

const EMPTY = Buffer.alloc(0);

export function recordToMessage(r: LogRecord): Partial<LogRecordMessage> {
  switch (r.type) {
    case 'write':
      return { type: 'RECORD_TYPE_WRITE', epoch: r.epoch, seq: r.seq, offset: r.offset, length: r.data.length, data: r.data, dataCrc32c: crc32c(r.data) };
    case 'unmap':
      return { type: 'RECORD_TYPE_UNMAP', epoch: r.epoch, seq: r.seq, offset: r.offset, length: r.length };
    case 'snapshot':
      return { type: 'RECORD_TYPE_SNAPSHOT', epoch: r.epoch, seq: r.seq, name: r.name };
    case 'epoch':
      return { type: 'RECORD_TYPE_EPOCH', epoch: r.epoch, seq: r.seq };
  }
}

function corrupt(what: string): TriremeError {
  return new TriremeError('ERR_CHECKSUM_MISMATCH', `${what}: data CRC32C mismatch`);
}

/** Decodes and verifies a record from the wire; throws ERR_CHECKSUM_MISMATCH or ERR_INVALID_ARGUMENT. */
export function recordFromMessage(m: LogRecordMessage): LogRecord {
  switch (m.type) {
    case 'RECORD_TYPE_WRITE': {
      const data = m.data ?? EMPTY;
      if (crc32c(data) !== m.dataCrc32c) throw corrupt(`write record seq ${m.seq}`);
      return { type: 'write', epoch: m.epoch, seq: m.seq, offset: m.offset, data };
    }
    case 'RECORD_TYPE_UNMAP':
      return { type: 'unmap', epoch: m.epoch, seq: m.seq, offset: m.offset, length: m.length };
    case 'RECORD_TYPE_SNAPSHOT':
      return { type: 'snapshot', epoch: m.epoch, seq: m.seq, name: m.name };
    case 'RECORD_TYPE_EPOCH':
      return { type: 'epoch', epoch: m.epoch, seq: m.seq };
    default:
      throw new TriremeError('ERR_INVALID_ARGUMENT', `unknown record type ${String(m.type)}`);
  }
}

export function extentToMessage(e: ImageExtent): Partial<ImageExtentMessage> {
  return e.type === 'data'
    ? { type: 'EXTENT_TYPE_DATA', offset: e.offset, length: e.data.length, data: e.data, dataCrc32c: crc32c(e.data), seq: e.seq }
    : { type: 'EXTENT_TYPE_ZERO', offset: e.offset, length: e.length, seq: e.seq };
}

export function extentFromMessage(m: ImageExtentMessage): ImageExtent {
  if (m.type === 'EXTENT_TYPE_DATA') {
    const data = m.data ?? EMPTY;
    if (crc32c(data) !== m.dataCrc32c) throw corrupt(`extent at ${m.offset}`);
    return { type: 'data', offset: m.offset, data, seq: m.seq };
  }
  if (m.type === 'EXTENT_TYPE_ZERO') return { type: 'zero', offset: m.offset, length: m.length, seq: m.seq };
  throw new TriremeError('ERR_INVALID_ARGUMENT', `unknown extent type ${String(m.type)}`);
}
