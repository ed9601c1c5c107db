/**
 * The contract between the replica's storage engine (segments, index, LevelDB
 * metadata, snapshots, compaction) and the replica server (data protocol, gRPC
 * control, metrics). Offsets and lengths are bytes, multiples of BLOCK_SIZE.
 * Epochs and seqs are plain numbers (safe integers: 2^53 writes is centuries).
 */
export const BLOCK_SIZE = 4096;

export type ReplicaState = 'ok' | 'error';

export interface SpaceUsage {
  /** Bytes of all segment files on disk. */
  readonly totalBytes: number;
  /** Bytes of records still needed by the head or a snapshot. */
  readonly liveBytes: number;
  /** Bytes compaction could give back. */
  readonly reclaimableBytes: number;
  readonly segments: number;
}

/** Seqs `from..to` all written under `epoch` (see store/epoch-runs.ts). */
export interface EpochRun {
  readonly epoch: number;
  readonly from: number;
  readonly to: number;
}

export interface ReplicaInfo {
  readonly replicaId: string;
  readonly volumeId: string;
  readonly size: number;
  readonly epoch: number;
  /** Highest seq appended to the log (page cache). */
  readonly lastSeq: number;
  /** Highest seq known to be on stable storage. */
  readonly durableSeq: number;
  readonly state: ReplicaState;
  /** Why the replica is in the error state (corrupt record, ...). */
  readonly error?: string;
  readonly space: SpaceUsage;
  /** The epochs of the records in the log, as runs in seq order (gaps: seqs never received). */
  readonly runs: readonly EpochRun[];
  /** Set while a rebuild is unfinished: the log is a whole prefix only up to this seq. Null when whole. */
  readonly rebuildBase: number | null;
}

export interface SnapshotInfo {
  readonly name: string;
  /** The snapshot holds every record with seq <= this. */
  readonly seq: number;
  readonly epoch: number;
  readonly createdAt: string;
  /** Bytes of the volume written as of the snapshot. */
  readonly sizeBytes: number;
  /** Bytes only this snapshot keeps alive (freed by deleting it). */
  readonly exclusiveBytes: number;
}

/** One log record as shipped by a delta rebuild: applied on the target with "higher seq wins" per block. */
export type LogRecord =
  | { readonly type: 'write'; readonly epoch: number; readonly seq: number; readonly offset: number; readonly data: Buffer }
  | { readonly type: 'unmap'; readonly epoch: number; readonly seq: number; readonly offset: number; readonly length: number }
  | { readonly type: 'snapshot'; readonly epoch: number; readonly seq: number; readonly name: string }
  | { readonly type: 'epoch'; readonly epoch: number; readonly seq: number };

/** One extent of an exported image (full rebuild, clone, diff between snapshots). */
export type ImageExtent =
  | { readonly type: 'data'; readonly offset: number; readonly data: Buffer; readonly seq: number }
  | { readonly type: 'zero'; readonly offset: number; readonly length: number; readonly seq: number };

/** Errors the store throws carry one of these codes (StoreError.code). */
export const StoreErrorCode = {
  StaleEpoch: 'ERR_STALE_EPOCH',
  OutOfRange: 'ERR_OUT_OF_RANGE',
  Misaligned: 'ERR_MISALIGNED',
  NoSpace: 'ERR_NO_SPACE',
  Corrupt: 'ERR_CORRUPT',
  NotFound: 'ERR_NOT_FOUND',
  AlreadyExists: 'ERR_ALREADY_EXISTS',
  Closed: 'ERR_CLOSED',
  Busy: 'ERR_BUSY',
} as const;

export interface ReplicaStore {
  info(): ReplicaInfo;
  /**
   * A controller's claim (fencing, DESIGN.md invariant 3): persists `epoch`
   * before resolving, and refuses one not strictly above the current epoch
   * with ERR_STALE_EPOCH, so two controllers can never both claim one number.
   */
  setEpoch(epoch: number): Promise<void>;
  /**
   * Appends a write record; resolves once it is in the log (page cache). `fua`: after fdatasync.
   * Keeps no reference to `data` once the promise settles: the data server reuses the buffer.
   */
  write(epoch: number, seq: number, offset: number, data: Buffer, fua?: boolean): Promise<void>;
  unmap(epoch: number, seq: number, offset: number, length: number): Promise<void>;
  /** fdatasync of everything appended so far; group-committed with concurrent flushes. */
  flush(epoch: number): Promise<void>;
  /** Reads the head, or a snapshot by name. */
  read(offset: number, length: number, snapshot?: string): Promise<Buffer>;
  createSnapshot(name: string, epoch: number, seq: number): Promise<SnapshotInfo>;
  deleteSnapshot(name: string): Promise<void>;
  listSnapshots(): SnapshotInfo[];
  /** Head becomes the snapshot's content (only while detached; the caller checks). */
  revertToSnapshot(name: string, epoch: number, seq: number): Promise<void>;
  /** Records with seq > afterSeq, in seq order; throws ERR_NOT_FOUND if compaction already dropped some. */
  exportRecords(afterSeq: number): AsyncIterable<LogRecord>;
  /** The live image at a snapshot (or the head), or the blocks that differ from `base`. */
  exportImage(options: { snapshot?: string; base?: string }): AsyncIterable<ImageExtent>;
  /** Rebuild target side: per block, the record with the higher seq wins. */
  applyRecord(record: LogRecord): Promise<void>;
  applyExtent(extent: ImageExtent): Promise<void>;
  /** Truncates the log back to `seq` (divergent tail from an older epoch, invariant 4). */
  truncateAfter(seq: number): Promise<void>;
  /**
   * Empties the head and drops every snapshot (a full rebuild's target), keeping
   * identity, size and epoch; lastSeq becomes 0. Always allowed, unlike a
   * truncation across a revert or a compaction.
   */
  reset(): Promise<void>;
  /** Persists the rebuild flag: the log is a whole prefix only up to `base`. */
  beginRebuild(base: number): Promise<void>;
  /** Persists `runs` as the history of seqs <= upTo (the source's) and clears the rebuild flag. */
  finishRebuild(upTo: number, runs: readonly EpochRun[]): Promise<void>;
  resize(newSize: number): Promise<void>;
  compact(options?: { minDeadRatio?: number }): Promise<{ segmentsFreed: number; bytesFreed: number }>;
  close(): Promise<void>;
}
