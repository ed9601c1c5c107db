import { BufferPool } from '../../common/buffer-pool';
import { validRuns } from './epoch-runs';
import { BLOCK_SIZE, type EpochRun, type ImageExtent, type LogRecord, type ReplicaInfo, type ReplicaStore, type SnapshotInfo, type SpaceUsage } from '../store-types';
import { IndexView, indexBytes } from './block-index';
import { Checkpointer } from './checkpoint';
import { Compactor, type CompactionOptions, type CompactionResult } from './compactor';
import { StoreError } from './errors';
import { exportImage, exportRecords } from './exporter';
import { MAX_NAME_BYTES, MAX_RECORD_BLOCKS, RecordType, encodeEpoch, encodeNamed, encodeUnmap, encodeWrite } from './record-codec';
import { deadBytes, exclusiveBytes, markLive, writtenBlocks } from './space';
import { RECORD_POOL, StoreCore, type SnapshotEntry } from './store-core';
import { resetStore, truncateAfter } from './truncate';

/** Log bytes between periodic checkpoints (restart replays at most about this much). */
export const DEFAULT_CHECKPOINT_BYTES = 256 << 20;
const SPACE_CACHE_MS = 1000;
const MAX_UNMAP_BLOCKS = 0xffffffff;

/** The ReplicaStore over a StoreCore: validation first, then the private implementation (STYLE.md, abstract-level). */
export class LogStore extends StoreCore implements ReplicaStore {
  ckptr!: Checkpointer;
  compactor!: Compactor;
  checkpointBytes = DEFAULT_CHECKPOINT_BYTES;
  private spaceCache: { at: number; space: SpaceUsage } | null = null;
  private readonly records = new BufferPool(RECORD_POOL);
  private readonly takeRecord = (n: number): Buffer => this.records.take(n);
  private creating = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  /** An epoch claim being persisted (setEpoch between its check and its reply). */
  private claim: { epoch: number; done: Promise<void> } | null = null;

  /** Starts background work once recovery is done. */
  start(compaction: CompactionOptions, checkpointIntervalMs: number): void {
    this.compactor.start(compaction);
    this.timer = setInterval(() => {
      if (this.ckptr.bytesSince > 0) this.backgroundCheckpoint();
    }, checkpointIntervalMs);
    this.timer.unref();
  }

  info(): ReplicaInfo {
    return {
      replicaId: this.identity.replicaId,
      volumeId: this.identity.volumeId,
      size: this.identity.size,
      epoch: this.epoch,
      lastSeq: this.lastSeq,
      durableSeq: this.durableSeq,
      state: this.state,
      ...(this.errorReason !== undefined ? { error: this.errorReason } : {}),
      space: this.space(),
      runs: [...this.runs.runs],
      rebuildBase: this.rebuildBase,
    };
  }

  /** Space figures, recomputed at most once a second (a full walk of the index). */
  space(force = false): SpaceUsage {
    const now = Date.now();
    if (!force && this.spaceCache && now - this.spaceCache.at < SPACE_CACHE_MS) return this.spaceCache.space;
    const live = markLive(this.allViews(), (i) => this.segs.get(i));
    let total = 0;
    let liveBytes = 0;
    let reclaimable = 0;
    const segs = this.segs.all();
    for (const s of segs) {
      total += s.size;
      liveBytes += live.liveBytes.get(s.idx) ?? 0;
      if (s.sealed) reclaimable += deadBytes(s, live);
    }
    const space = { totalBytes: total, liveBytes, reclaimableBytes: reclaimable, segments: segs.length };
    this.spaceCache = { at: now, space };
    return space;
  }

  indexBytes(): number {
    return indexBytes(this.allViews());
  }

  allViews(): IndexView[] {
    return [this.head, ...[...this.snaps.values()].map((s) => s.view)];
  }

  async setEpoch(epoch: number): Promise<void> {
    this.checkOpen();
    if (!Number.isSafeInteger(epoch) || epoch < 0) throw new StoreError('ERR_INVALID_ARGUMENT', `bad epoch ${epoch}`);
    // Strictly above, counting a claim still being persisted: two claims of one
    // number arriving together must not both succeed (DESIGN.md invariant 3).
    const current = Math.max(this.epoch, this.claim?.epoch ?? 0);
    if (epoch <= current) throw new StoreError('ERR_STALE_EPOCH', `epoch ${epoch} is not above ${current}`);
    const done = this.persistEpoch(epoch);
    this.claim = { epoch, done };
    try {
      await done;
    } finally {
      if (this.claim?.done === done) this.claim = null;
    }
  }

  /** The marker and LevelDB both hold the epoch before this resolves. */
  private async persistEpoch(epoch: number): Promise<void> {
    await this.append(encodeEpoch(epoch, this.lastSeq), true, { type: RecordType.Epoch, epoch, seq: this.lastSeq, lba: 0, count: 0 });
    await this.db.putEpoch(Math.max(epoch, this.epoch));
  }

  /** Fencing: an older epoch is refused; a newer one is adopted (persisted) first. */
  private async fence(epoch: number): Promise<void> {
    if (epoch === this.epoch) return;
    if (!Number.isSafeInteger(epoch) || epoch < this.epoch) throw new StoreError('ERR_STALE_EPOCH', `epoch ${epoch} is older than ${this.epoch}`);
    // A claim of this epoch (or a newer one) is being persisted: wait for it, then check again.
    if (this.claim && epoch <= this.claim.epoch) {
      await this.claim.done.catch(() => undefined);
      return this.fence(epoch);
    }
    await this.setEpoch(epoch);
  }

  async write(epoch: number, seq: number, offset: number, data: Buffer, fua = false): Promise<void> {
    this.checkOpen();
    this.checkSeq(seq);
    this.checkRange(offset, data.length);
    await this.fence(epoch);
    await this.appendWrite(epoch, seq, offset / BLOCK_SIZE, data, fua);
  }

  async unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    this.checkOpen();
    this.checkSeq(seq);
    this.checkRange(offset, length);
    await this.fence(epoch);
    await this.appendUnmap(epoch, seq, offset / BLOCK_SIZE, length / BLOCK_SIZE);
  }

  async flush(epoch: number): Promise<void> {
    this.checkOpen();
    await this.fence(epoch);
    let upTo = 0;
    await this.appender.append(null, true, () => (upTo = this.lastSeq));
    if (upTo > this.durableSeq) this.durableSeq = upTo;
  }

  read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    try {
      this.checkOpen();
      // The head without viewFor's result object: this is the path of every 4k read.
      let view = this.head;
      let size = this.identity.size;
      if (snapshot !== undefined) ({ view, size } = this.viewFor(snapshot));
      this.checkRange(offset, length, size);
      return length === BLOCK_SIZE ? this.readOne(view, offset / BLOCK_SIZE) : this.readView(view, offset, length);
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** Appends one record and applies it to the index in log order. */
  async append(buf: Buffer, sync: boolean, effect: Parameters<StoreCore['applyAppended']>[2]): Promise<void> {
    let upTo = 0;
    await this.appender.append(buf, sync, (seg, off) => {
      this.applyAppended(seg, off, effect);
      upTo = this.lastSeq;
    });
    this.metrics?.appends.inc({ replica: this.metrics.replica, type: String(effect.type) });
    this.metrics?.bytes.inc({ replica: this.metrics.replica }, buf.length);
    this.spaceCache = null;
    if (sync && upTo > this.durableSeq) this.durableSeq = upTo;
    this.ckptr.bytesSince += buf.length;
    if (this.ckptr.bytesSince >= this.checkpointBytes) this.backgroundCheckpoint();
  }

  private backgroundCheckpoint(): void {
    this.ckptr.bytesSince = 0;
    this.ckptr.run().catch((err: unknown) => this.logger.warn({ err }, 'periodic checkpoint failed'));
  }

  /** `copy`: a rebuild's record or extent (not a live write), see StoreCore.applyAppended. */
  async appendWrite(epoch: number, seq: number, lba: number, data: Buffer, sync: boolean, copy = false): Promise<void> {
    const blocks = data.length / BLOCK_SIZE;
    const parts: Promise<void>[] = [];
    for (let i = 0; i < blocks; i += MAX_RECORD_BLOCKS) {
      const count = Math.min(MAX_RECORD_BLOCKS, blocks - i);
      const buf = encodeWrite(epoch, seq, lba + i, data.subarray(i * BLOCK_SIZE, (i + count) * BLOCK_SIZE), this.takeRecord);
      // Settled means written (or abandoned): the appender holds the buffer no longer.
      parts.push(this.append(buf, sync, { type: RecordType.Write, epoch, seq, lba: lba + i, count, copy }).finally(() => this.records.give(buf)));
    }
    await Promise.all(parts);
  }

  async appendUnmap(epoch: number, seq: number, lba: number, blocks: number, copy = false): Promise<void> {
    const parts: Promise<void>[] = [];
    for (let i = 0; i < blocks; i += MAX_UNMAP_BLOCKS) {
      const count = Math.min(MAX_UNMAP_BLOCKS, blocks - i);
      parts.push(this.append(encodeUnmap(epoch, seq, lba + i, count), false, { type: RecordType.Unmap, epoch, seq, lba: lba + i, count, copy }));
    }
    await Promise.all(parts);
  }

  async createSnapshot(name: string, epoch: number, seq: number): Promise<SnapshotInfo> {
    this.checkOpen();
    this.checkSeq(seq);
    checkName(name);
    await this.fence(epoch);
    return this.addSnapshot(name, epoch, seq);
  }

  private async addSnapshot(name: string, epoch: number, seq: number): Promise<SnapshotInfo> {
    if (this.snaps.has(name) || this.creating.has(name)) throw new StoreError('ERR_ALREADY_EXISTS', `snapshot ${JSON.stringify(name)} exists`);
    this.creating.add(name);
    try {
      const meta = { name, seq, epoch, createdAt: new Date().toISOString(), size: this.identity.size };
      this.pendingSnaps.set(name, meta);
      // The marker freezes the head at its place in the log; the catalog entry makes it count.
      await this.append(encodeNamed(RecordType.Snapshot, epoch, seq, name), true, { type: RecordType.Snapshot, epoch, seq, lba: 0, count: 0, name });
      try {
        await this.db.putSnapshot(meta);
      } catch (err) {
        this.snaps.delete(name);
        throw err;
      }
      return this.snapshotInfo(name);
    } finally {
      this.pendingSnaps.delete(name);
      this.creating.delete(name);
    }
  }

  async deleteSnapshot(name: string): Promise<void> {
    this.checkOpen();
    if (!this.snaps.has(name)) throw new StoreError('ERR_NOT_FOUND', `no snapshot ${JSON.stringify(name)}`);
    await this.db.delSnapshot(name);
    this.snaps.delete(name);
    this.spaceCache = null;
  }

  listSnapshots(): SnapshotInfo[] {
    return [...this.snaps.keys()].map((n) => this.snapshotInfo(n)).sort((a, b) => a.seq - b.seq);
  }

  private snapshotInfo(name: string): SnapshotInfo {
    const ordered = [...this.snaps.values()].sort((a, b) => a.meta.seq - b.meta.seq);
    const at = ordered.findIndex((s) => s.meta.name === name);
    const s = ordered[at];
    const neighbours = [ordered[at - 1], ordered[at + 1]].filter((x): x is SnapshotEntry => x !== undefined).map((x) => x.view);
    return {
      name,
      seq: s.meta.seq,
      epoch: s.meta.epoch,
      createdAt: s.meta.createdAt,
      sizeBytes: writtenBlocks(s.view) * BLOCK_SIZE,
      exclusiveBytes: exclusiveBytes(s.view, [...neighbours, this.head]),
    };
  }

  async revertToSnapshot(name: string, epoch: number, seq: number): Promise<void> {
    this.checkOpen();
    this.checkSeq(seq);
    await this.fence(epoch);
    if (!this.snaps.has(name)) throw new StoreError('ERR_NOT_FOUND', `no snapshot ${JSON.stringify(name)}`);
    await this.append(encodeNamed(RecordType.Revert, epoch, seq, name), true, { type: RecordType.Revert, epoch, seq, lba: 0, count: 0, name });
    // A checkpoint right away: replaying a revert needs its snapshot, which may be deleted next.
    await this.ckptr.run();
  }

  exportRecords(afterSeq: number): AsyncIterable<LogRecord> {
    this.checkOpen();
    return exportRecords(this, afterSeq);
  }

  exportImage(options: { snapshot?: string; base?: string }): AsyncIterable<ImageExtent> {
    this.checkOpen();
    return exportImage(this, options);
  }

  async applyRecord(record: LogRecord): Promise<void> {
    this.checkOpen();
    this.checkSeq(record.seq);
    switch (record.type) {
      case 'write':
        this.checkRange(record.offset, record.data.length);
        return this.appendWrite(record.epoch, record.seq, record.offset / BLOCK_SIZE, record.data, false, true);
      case 'unmap':
        this.checkRange(record.offset, record.length);
        return this.appendUnmap(record.epoch, record.seq, record.offset / BLOCK_SIZE, record.length / BLOCK_SIZE, true);
      case 'snapshot':
        checkName(record.name);
        if (!this.snaps.has(record.name)) await this.addSnapshot(record.name, record.epoch, record.seq);
        return undefined;
      case 'epoch':
        if (record.epoch > this.epoch) await this.fence(record.epoch);
        return undefined;
    }
  }

  async applyExtent(extent: ImageExtent): Promise<void> {
    this.checkOpen();
    this.checkSeq(extent.seq);
    if (extent.type === 'data') {
      this.checkRange(extent.offset, extent.data.length);
      return this.appendWrite(this.epoch, extent.seq, extent.offset / BLOCK_SIZE, extent.data, false, true);
    }
    this.checkRange(extent.offset, extent.length);
    return this.appendUnmap(this.epoch, extent.seq, extent.offset / BLOCK_SIZE, extent.length / BLOCK_SIZE, true);
  }

  /** truncateAfter(0) is a reset: it needs no history, so it always works. */
  truncateAfter(seq: number): Promise<void> {
    this.checkOpen();
    this.checkSeq(seq);
    return seq === 0 ? this.reset() : truncateAfter(this, seq);
  }

  async reset(): Promise<void> {
    this.checkOpen();
    await resetStore(this);
    this.spaceCache = null;
  }

  async beginRebuild(base: number): Promise<void> {
    this.checkOpen();
    this.checkSeq(base);
    await this.db.putRebuildBase(base);
    this.rebuildBase = base;
  }

  async finishRebuild(upTo: number, runs: readonly EpochRun[]): Promise<void> {
    this.checkOpen();
    this.checkSeq(upTo);
    if (!validRuns(runs)) throw new StoreError('ERR_INVALID_ARGUMENT', 'epoch runs must be sorted, disjoint and positive');
    this.runs.replacePrefix(upTo, runs);
    // The checkpoint persists the adopted history before the flag goes.
    await this.ckptr.run();
    await this.db.putRebuildBase(null);
    this.rebuildBase = null;
  }

  async resize(newSize: number): Promise<void> {
    this.checkOpen();
    if (!Number.isSafeInteger(newSize) || newSize % BLOCK_SIZE !== 0) throw new StoreError('ERR_MISALIGNED', `size ${newSize} is not a multiple of ${BLOCK_SIZE}`);
    if (newSize < this.identity.size) throw new StoreError('ERR_INVALID_ARGUMENT', `cannot shrink from ${this.identity.size} to ${newSize}`);
    if (newSize === this.identity.size) return;
    await this.db.putIdentity({ ...this.identity, size: newSize });
    this.identity = { ...this.identity, size: newSize };
    this.blocks = newSize / BLOCK_SIZE;
    this.head.grow(this.blocks);
  }

  compact(options?: { minDeadRatio?: number }): Promise<CompactionResult> {
    this.checkOpen();
    return this.compactor.run(options?.minDeadRatio);
  }

  async close(): Promise<void> {
    if (this.lifecycle !== 'open') return;
    this.lifecycle = 'closing';
    if (this.timer) clearInterval(this.timer);
    await this.compactor.stop();
    await this.appender.pause();
    try {
      if (this.state === 'ok') {
        await this.appender.syncActive();
        await this.ckptr.run();
      }
    } finally {
      this.appender.close();
      this.metrics?.detach();
      await this.segs.closeAll();
      await this.db.close();
      this.lifecycle = 'closed';
    }
  }
}

function checkName(name: string): void {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name) > MAX_NAME_BYTES || name.includes('\0')) {
    throw new StoreError('ERR_INVALID_ARGUMENT', `bad snapshot name ${JSON.stringify(name)}`);
  }
}
