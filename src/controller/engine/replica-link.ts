import { TriremeError, errorCode } from '../../common/errors';
import type { ImageExtent, LogRecord, SnapshotInfo } from '../../replica/store-types';

/**
 * A run of consecutive log records written under one epoch: seqs `from..to`
 * (inclusive) all carry `epoch`. A replica's runs are its history; comparing
 * runs finds where two logs diverge (invariant 4) without shipping the log.
 * Gaps between runs are seqs the replica never received.
 */
export interface EpochRun {
  readonly epoch: number;
  readonly from: number;
  readonly to: number;
}

export interface ReplicaLinkStatus {
  readonly replicaId: string;
  /** The highest epoch this replica has promised to (setEpoch); older requests are refused. */
  readonly epoch: number;
  /** Highest seq appended (page cache). */
  readonly lastSeq: number;
  /** Highest seq on stable storage. */
  readonly durableSeq: number;
  readonly size: number;
  readonly state: 'ok' | 'error';
  /** The epochs of the records in the log, as runs in seq order. */
  readonly runs: readonly EpochRun[];
  /**
   * Set (persisted) while the replica is being rebuilt: its log is a complete
   * prefix only up to this seq, records above it may have holes. Null when whole.
   */
  readonly rebuildBase: number | null;
}

/**
 * What the volume engine needs from one replica, data path and control path
 * together. Every mutating call carries the caller's epoch; a replica refuses
 * an epoch other than the one it promised with ERR_STALE_EPOCH (invariant 3).
 * Requests on one link are applied in the order they were issued (one ordered
 * connection), which the engine relies on to leave no holes in a replica's log.
 */
export interface ReplicaLink {
  readonly id: string;
  write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void>;
  unmap(epoch: number, seq: number, offset: number, length: number): Promise<void>;
  /** fdatasync of everything appended so far (invariant 8). */
  flush(epoch: number): Promise<void>;
  read(offset: number, length: number, snapshot?: string): Promise<Buffer>;
  ping(): Promise<void>;
  status(): Promise<ReplicaLinkStatus>;
  /**
   * A claim: persists `epoch` before resolving; the replica refuses one not
   * strictly above its current epoch in the same step (ERR_STALE_EPOCH), so
   * of two controllers claiming one number only one succeeds (invariant 3).
   */
  setEpoch(epoch: number): Promise<void>;
  /**
   * Cuts the log back to `seq` (ERR_NOT_FOUND when compaction or a revert
   * makes that impossible: rebuild in full). `seq` 0 empties the replica,
   * snapshots included, and always works: the full rebuild relies on it.
   */
  truncateAfter(epoch: number, seq: number): Promise<void>;
  /** Persists the rebuild flag (see ReplicaLinkStatus.rebuildBase). */
  beginRebuild(epoch: number, base: number): Promise<void>;
  /**
   * Ends a rebuild: the replica's history up to `upTo` becomes `runs` (the
   * source's, needed after a full copy that carries no record epochs) and the
   * rebuild flag is cleared, both persisted.
   */
  finishRebuild(epoch: number, upTo: number, runs: readonly EpochRun[]): Promise<void>;
  createSnapshot(epoch: number, name: string, seq: number): Promise<SnapshotInfo>;
  deleteSnapshot(epoch: number, name: string): Promise<void>;
  listSnapshots(): Promise<SnapshotInfo[]>;
  revertToSnapshot(epoch: number, name: string, seq: number): Promise<void>;
  /** Records with seq > afterSeq in seq order; ERR_NOT_FOUND when some were compacted away. */
  exportRecords(afterSeq: number): AsyncIterable<LogRecord>;
  exportImage(options: { snapshot?: string }): AsyncIterable<ImageExtent>;
  applyRecord(epoch: number, record: LogRecord): Promise<void>;
  applyExtent(epoch: number, extent: ImageExtent): Promise<void>;
  resize(epoch: number, size: number): Promise<void>;
  close(): Promise<void>;
}

/** Stable codes of ReplicaLinkError; the engine branches on these only. */
export const LinkErrorCode = {
  StaleEpoch: 'ERR_STALE_EPOCH',
  Unreachable: 'ERR_UNREACHABLE',
  Timeout: 'ERR_TIMEOUT',
  Corrupt: 'ERR_CORRUPT',
  NotFound: 'ERR_NOT_FOUND',
  NoSpace: 'ERR_NO_SPACE',
  OutOfRange: 'ERR_OUT_OF_RANGE',
  AlreadyExists: 'ERR_ALREADY_EXISTS',
} as const;

export type LinkErrorCodeValue = (typeof LinkErrorCode)[keyof typeof LinkErrorCode];

export class ReplicaLinkError extends TriremeError {
  readonly replica: string;

  constructor(code: LinkErrorCodeValue, replica: string, message: string, options?: { cause?: unknown }) {
    super(code, `replica ${replica}: ${message}`, options);
    this.name = 'ReplicaLinkError';
    this.replica = replica;
  }
}

export function isStaleEpoch(err: unknown): boolean {
  return errorCode(err) === LinkErrorCode.StaleEpoch;
}
