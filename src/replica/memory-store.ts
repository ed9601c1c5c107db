import { randomUUID } from 'node:crypto';
import { TriremeError } from '../common/errors';
import { EpochRunLog, validRuns } from './store/epoch-runs';
import {
  BLOCK_SIZE,
  type EpochRun,
  StoreErrorCode,
  type ImageExtent,
  type LogRecord,
  type ReplicaInfo,
  type ReplicaStore,
  type SnapshotInfo,
} from './store-types';

/** One block's newest state. Immutable, so snapshots share entries with the head (copy-on-write by reference). */
interface BlockEntry {
  readonly seq: number;
  /** undefined: unmapped (reads as zeros). */
  readonly data: Buffer | undefined;
}

type BlockMap = Map<number, BlockEntry>;

interface MemorySnapshot {
  readonly info: Omit<SnapshotInfo, 'sizeBytes' | 'exclusiveBytes'>;
  readonly blocks: BlockMap;
}

function fail(code: string, message: string): never {
  throw new TriremeError(code, message);
}

/**
 * An in-memory ReplicaStore with the semantics of the on-disk store: epochs and
 * fencing, per-block "higher seq wins", snapshots, a record log for delta
 * export that compaction and truncation cut, and a closed state. It keeps
 * nothing across restarts, so it serves the controller's deterministic
 * simulations and fast server tests; durability is tested on the real store.
 */
export class MemoryReplicaStore implements ReplicaStore {
  private size: number;
  private epoch = 0;
  private lastSeq = 0;
  private durableSeq = 0;
  private head: BlockMap = new Map();
  /** The head as of `logStartSeq`; the log holds every record after it. */
  private checkpoint: BlockMap = new Map();
  private logStartSeq = 0;
  private revertSeq = 0;
  private log: LogRecord[] = [];
  /** Write payload bytes held by `log`; past maxLogBytes the log is compacted, as a disk store's would be. */
  private logBytes = 0;
  private readonly maxLogBytes: number;
  private readonly snapshots = new Map<string, MemorySnapshot>();
  private runs = new EpochRunLog();
  private rebuildBase: number | null = null;
  private errorReason: string | undefined;
  private closed = false;
  readonly replicaId: string;
  readonly volumeId: string;

  constructor(options: { size: number; volumeId?: string; replicaId?: string; maxLogBytes?: number }) {
    if (!Number.isSafeInteger(options.size) || options.size <= 0 || options.size % BLOCK_SIZE !== 0) {
      fail('ERR_INVALID_ARGUMENT', `size must be a positive multiple of ${BLOCK_SIZE}`);
    }
    this.size = options.size;
    this.volumeId = options.volumeId ?? '';
    this.replicaId = options.replicaId ?? randomUUID();
    this.maxLogBytes = options.maxLogBytes ?? 64 * 1024 * 1024;
  }

  info(): ReplicaInfo {
    const live = this.liveEntries();
    const liveBytes = live.size * BLOCK_SIZE;
    const totalBytes = Math.max(liveBytes, this.checkpoint.size * BLOCK_SIZE + this.logBytes);
    return {
      replicaId: this.replicaId,
      volumeId: this.volumeId,
      size: this.size,
      epoch: this.epoch,
      lastSeq: this.lastSeq,
      durableSeq: this.durableSeq,
      state: this.errorReason === undefined ? 'ok' : 'error',
      ...(this.errorReason !== undefined ? { error: this.errorReason } : {}),
      space: { totalBytes, liveBytes, reclaimableBytes: totalBytes - liveBytes, segments: 1 },
      runs: [...this.runs.runs],
      rebuildBase: this.rebuildBase,
    };
  }

  /** Puts the store in the error state, as the disk store does on mid-log corruption. */
  markCorrupt(reason: string): void {
    this.errorReason = reason;
  }

  async setEpoch(epoch: number): Promise<void> {
    this.checkUsable();
    this.checkEpoch(epoch);
    // Strictly above: a claim of the current epoch may be a rival controller's (invariant 3).
    if (epoch <= this.epoch) fail(StoreErrorCode.StaleEpoch, `epoch ${epoch} is not above the replica's epoch ${this.epoch}`);
    this.epoch = epoch;
    this.log.push({ type: 'epoch', epoch, seq: this.lastSeq });
  }

  async write(epoch: number, seq: number, offset: number, data: Buffer, fua = false): Promise<void> {
    this.checkMutation(epoch, seq, offset, data.length);
    const record: LogRecord = { type: 'write', epoch, seq, offset, data: Buffer.from(data) };
    this.appendRecord(record);
    if (fua) this.durableSeq = this.lastSeq;
  }

  async unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    this.checkMutation(epoch, seq, offset, length);
    this.appendRecord({ type: 'unmap', epoch, seq, offset, length });
  }

  async flush(epoch: number): Promise<void> {
    this.checkUsable();
    this.checkEpoch(epoch);
    this.durableSeq = this.lastSeq;
  }

  async read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    this.checkUsable();
    this.checkRange(offset, length);
    const view = snapshot === undefined ? this.head : this.snapshotOf(snapshot).blocks;
    const out = Buffer.alloc(length);
    for (let i = 0; i < length / BLOCK_SIZE; i++) {
      view.get(offset / BLOCK_SIZE + i)?.data?.copy(out, i * BLOCK_SIZE);
    }
    return out;
  }

  async createSnapshot(name: string, epoch: number, seq: number): Promise<SnapshotInfo> {
    this.checkUsable();
    this.checkEpoch(epoch);
    if (this.snapshots.has(name)) fail(StoreErrorCode.AlreadyExists, `snapshot "${name}" already exists`);
    this.appendRecord({ type: 'snapshot', epoch, seq, name });
    return this.snapshotInfo(this.snapshotOf(name));
  }

  async deleteSnapshot(name: string): Promise<void> {
    this.checkUsable();
    this.snapshotOf(name);
    this.snapshots.delete(name);
  }

  listSnapshots(): SnapshotInfo[] {
    return [...this.snapshots.values()].sort((a, b) => a.info.seq - b.info.seq).map((s) => this.snapshotInfo(s));
  }

  async revertToSnapshot(name: string, epoch: number, seq: number): Promise<void> {
    this.checkUsable();
    this.checkEpoch(epoch);
    const snap = this.snapshotOf(name);
    // A revert has no record type a delta could replay, so the log restarts here:
    // a replica that was behind must take a full image (DESIGN.md invariant 5).
    this.head = new Map(snap.blocks);
    this.checkpoint = new Map(snap.blocks);
    this.setLog([]);
    this.lastSeq = Math.max(this.lastSeq, seq);
    this.logStartSeq = this.lastSeq;
    this.revertSeq = this.lastSeq;
    this.runs.note(epoch, seq);
  }

  async *exportRecords(afterSeq: number): AsyncIterable<LogRecord> {
    this.checkUsable();
    if (afterSeq < this.logStartSeq) fail(StoreErrorCode.NotFound, `records after seq ${afterSeq} were compacted away (log starts after ${this.logStartSeq})`);
    const records = this.log.filter((r) => r.seq > afterSeq && r.type !== 'epoch').sort((a, b) => a.seq - b.seq);
    for (const record of records) yield record;
  }

  async *exportImage(options: { snapshot?: string; base?: string }): AsyncIterable<ImageExtent> {
    this.checkUsable();
    const view = options.snapshot === undefined ? new Map(this.head) : this.snapshotOf(options.snapshot).blocks;
    const base = options.base === undefined ? undefined : this.snapshotOf(options.base).blocks;
    const indices = new Set(view.keys());
    if (base) for (const k of base.keys()) indices.add(k);
    const changed = [...indices].filter((k) => base === undefined || view.get(k) !== base.get(k)).sort((a, b) => a - b);
    // Adjacent blocks with the same seq share an extent; blocks of different seqs
    // never do, or a target applying "higher seq wins" per extent could let an
    // old block ride on a newer neighbour's seq over a newer live write.
    let run: { start: number; count: number; entry: BlockEntry } | undefined;
    for (const k of changed) {
      const entry = view.get(k) ?? { seq: base?.get(k)?.seq ?? 0, data: undefined };
      if (run && k === run.start + run.count && entry.seq === run.entry.seq && (entry.data === undefined) === (run.entry.data === undefined) && run.count < 256) {
        run.count++;
        continue;
      }
      if (run) yield this.extentOf(view, run);
      run = { start: k, count: 1, entry };
    }
    if (run) yield this.extentOf(view, run);
  }

  async applyRecord(record: LogRecord): Promise<void> {
    this.checkUsable();
    if (record.type === 'epoch') {
      this.epoch = Math.max(this.epoch, record.epoch);
      return;
    }
    if (record.type === 'snapshot' && this.snapshots.has(record.name)) return;
    if (record.type === 'write') this.checkRange(record.offset, record.data.length);
    if (record.type === 'unmap') this.checkRange(record.offset, record.length);
    this.appendRecord(record.type === 'write' ? { ...record, data: Buffer.from(record.data) } : record, true);
  }

  async applyExtent(extent: ImageExtent): Promise<void> {
    this.checkUsable();
    const length = extent.type === 'data' ? extent.data.length : extent.length;
    this.checkRange(extent.offset, length);
    const copy = extent.type === 'data' ? Buffer.from(extent.data) : undefined;
    // The checkpoint takes the extent too, so replaying the log over it (truncateAfter) keeps it.
    this.applyBlocks(this.head, extent.seq, extent.offset, length, copy);
    this.applyBlocks(this.checkpoint, extent.seq, extent.offset, length, copy);
    this.lastSeq = Math.max(this.lastSeq, extent.seq);
    if (this.rebuildBase === null) this.runs.note(this.epoch, extent.seq);
    // An image is not a log: deltas from before it are unknown here.
    this.logStartSeq = Math.max(this.logStartSeq, extent.seq);
  }

  async truncateAfter(seq: number): Promise<void> {
    this.checkUsable();
    if (seq >= this.lastSeq) return;
    if (seq === 0) return this.reset();
    // As on disk: the head before a revert is gone, so no truncation crosses one.
    if (this.revertSeq > 0) fail(StoreErrorCode.NotFound, `cannot truncate across a revert (seq ${this.revertSeq}); rebuild in full`);
    if (seq < this.logStartSeq) fail(StoreErrorCode.NotFound, `cannot truncate to seq ${seq}: the log starts after ${this.logStartSeq}`);
    this.setLog(this.log.filter((r) => r.seq <= seq));
    this.head = new Map(this.checkpoint);
    for (const r of [...this.log].sort((a, b) => a.seq - b.seq)) this.applyToHead(r);
    for (const [name, snap] of this.snapshots) if (snap.info.seq > seq) this.snapshots.delete(name);
    this.lastSeq = Math.max(seq, this.logStartSeq);
    this.durableSeq = Math.min(this.durableSeq, this.lastSeq);
    this.runs.clip(seq);
    if (this.rebuildBase !== null && seq < this.rebuildBase) this.rebuildBase = null;
  }

  async reset(): Promise<void> {
    this.checkUsable();
    this.head = new Map();
    this.checkpoint = new Map();
    this.setLog([]);
    this.snapshots.clear();
    this.lastSeq = 0;
    this.durableSeq = 0;
    this.logStartSeq = 0;
    this.revertSeq = 0;
    this.runs = new EpochRunLog();
    this.rebuildBase = null;
  }

  async beginRebuild(base: number): Promise<void> {
    this.checkUsable();
    if (!Number.isSafeInteger(base) || base < 0) fail('ERR_INVALID_ARGUMENT', `invalid rebuild base ${base}`);
    this.rebuildBase = base;
  }

  async finishRebuild(upTo: number, runs: readonly EpochRun[]): Promise<void> {
    this.checkUsable();
    if (!Number.isSafeInteger(upTo) || upTo < 0) fail('ERR_INVALID_ARGUMENT', `invalid seq ${upTo}`);
    if (!validRuns(runs)) fail('ERR_INVALID_ARGUMENT', 'epoch runs must be sorted, disjoint and positive');
    this.runs.replacePrefix(upTo, runs);
    this.rebuildBase = null;
  }

  async resize(newSize: number): Promise<void> {
    this.checkUsable();
    if (!Number.isSafeInteger(newSize) || newSize % BLOCK_SIZE !== 0 || newSize < this.size) {
      fail('ERR_INVALID_ARGUMENT', `new size ${newSize} must be a multiple of ${BLOCK_SIZE} and not smaller than ${this.size}`);
    }
    this.size = newSize;
  }

  async compact(options: { minDeadRatio?: number } = {}): Promise<{ segmentsFreed: number; bytesFreed: number }> {
    this.checkUsable();
    const ratio = options.minDeadRatio ?? 0;
    if (!(ratio >= 0 && ratio <= 1)) fail('ERR_INVALID_ARGUMENT', 'minDeadRatio must be within 0..1');
    const before = this.info().space.totalBytes;
    this.compactLog();
    const after = this.info().space.totalBytes;
    return { segmentsFreed: 0, bytesFreed: Math.max(0, before - after) };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** `copy`: a rebuild's record; while a rebuild is unfinished those add no runs (as on disk, StoreCore.noteRun). */
  private appendRecord(record: LogRecord, copy = false): void {
    this.log.push(record);
    if ((record.type === 'write' || record.type === 'unmap') && !(copy && this.rebuildBase !== null)) this.runs.note(record.epoch, record.seq);
    if (record.type === 'write') this.logBytes += record.data.length;
    this.applyToHead(record);
    this.lastSeq = Math.max(this.lastSeq, record.seq);
    if (this.logBytes > this.maxLogBytes) this.compactLog();
  }

  /** Drops the log: the head becomes the checkpoint, and deltas from before now are NOT_FOUND. */
  private compactLog(): void {
    this.checkpoint = new Map(this.head);
    this.setLog([]);
    this.logStartSeq = this.lastSeq;
  }

  private setLog(records: LogRecord[]): void {
    this.log = records;
    this.logBytes = 0;
    for (const r of records) if (r.type === 'write') this.logBytes += r.data.length;
  }

  private applyToHead(record: LogRecord): void {
    if (record.type === 'write') this.applyBlocks(this.head, record.seq, record.offset, record.data.length, record.data);
    else if (record.type === 'unmap') this.applyBlocks(this.head, record.seq, record.offset, record.length, undefined);
    else if (record.type === 'snapshot' && !this.snapshots.has(record.name)) {
      this.snapshots.set(record.name, {
        info: { name: record.name, seq: record.seq, epoch: record.epoch, createdAt: new Date().toISOString() },
        blocks: new Map(this.head),
      });
    }
  }

  /** Per block, the record with the higher seq wins (DESIGN.md invariant 5). */
  private applyBlocks(map: BlockMap, seq: number, offset: number, length: number, data: Buffer | undefined): void {
    const first = offset / BLOCK_SIZE;
    for (let i = 0; i < length / BLOCK_SIZE; i++) {
      const current = map.get(first + i);
      if (current !== undefined && current.seq > seq) continue;
      map.set(first + i, { seq, data: data?.subarray(i * BLOCK_SIZE, (i + 1) * BLOCK_SIZE) });
    }
  }

  private extentOf(view: BlockMap, run: { start: number; count: number; entry: BlockEntry }): ImageExtent {
    const offset = run.start * BLOCK_SIZE;
    if (run.entry.data === undefined) return { type: 'zero', offset, length: run.count * BLOCK_SIZE, seq: run.entry.seq };
    const data = Buffer.alloc(run.count * BLOCK_SIZE);
    for (let i = 0; i < run.count; i++) view.get(run.start + i)?.data?.copy(data, i * BLOCK_SIZE);
    return { type: 'data', offset, data, seq: run.entry.seq };
  }

  private liveEntries(): Set<BlockEntry> {
    const live = new Set<BlockEntry>();
    for (const map of [this.head, ...[...this.snapshots.values()].map((s) => s.blocks)]) {
      for (const entry of map.values()) if (entry.data !== undefined) live.add(entry);
    }
    return live;
  }

  private snapshotInfo(snap: MemorySnapshot): SnapshotInfo {
    const others = new Set<BlockEntry>(this.head.values());
    for (const s of this.snapshots.values()) if (s !== snap) for (const e of s.blocks.values()) others.add(e);
    let written = 0;
    let exclusive = 0;
    for (const e of snap.blocks.values()) {
      if (e.data === undefined) continue;
      written += BLOCK_SIZE;
      if (!others.has(e)) exclusive += BLOCK_SIZE;
    }
    return { ...snap.info, sizeBytes: written, exclusiveBytes: exclusive };
  }

  private snapshotOf(name: string): MemorySnapshot {
    return this.snapshots.get(name) ?? fail(StoreErrorCode.NotFound, `snapshot "${name}" not found`);
  }

  private checkUsable(): void {
    if (this.closed) fail(StoreErrorCode.Closed, 'store is closed');
    if (this.errorReason !== undefined) fail(StoreErrorCode.Corrupt, `store is in the error state: ${this.errorReason}`);
  }

  private checkEpoch(epoch: number): void {
    if (!Number.isSafeInteger(epoch) || epoch < 0) fail('ERR_INVALID_ARGUMENT', `invalid epoch ${epoch}`);
    if (epoch < this.epoch) fail(StoreErrorCode.StaleEpoch, `epoch ${epoch} is older than the replica's epoch ${this.epoch}`);
  }

  private checkMutation(epoch: number, seq: number, offset: number, length: number): void {
    this.checkUsable();
    this.checkEpoch(epoch);
    if (!Number.isSafeInteger(seq) || seq <= 0) fail('ERR_INVALID_ARGUMENT', `invalid seq ${seq}`);
    this.checkRange(offset, length);
  }

  private checkRange(offset: number, length: number): void {
    if (offset % BLOCK_SIZE !== 0 || length % BLOCK_SIZE !== 0 || length === 0) {
      fail(StoreErrorCode.Misaligned, `offset ${offset} and length ${length} must be non-empty multiples of ${BLOCK_SIZE}`);
    }
    if (offset < 0 || offset + length > this.size) fail(StoreErrorCode.OutOfRange, `range ${offset}+${length} is beyond the size ${this.size}`);
  }
}
