import { EpochRunLog } from '../../../../src/replica';
import { LinkErrorCode, ReplicaLinkError, type EpochRun, type LinkErrorCodeValue, type ReplicaLinkStatus } from '../../../../src/controller/engine/replica-link';
import type { ImageExtent, LogRecord, SnapshotInfo } from '../../../../src/replica/store-types';

export const SIM_BLOCK = 4096;

interface Version {
  readonly seq: number;
  /** null: unmapped, reads as zeros. */
  readonly data: Buffer | null;
}

/**
 * An in-memory model of one replica process for the engine's tests: a log of
 * records with (epoch, seq), per-block versions where the higher seq wins,
 * snapshots as views at a seq, epoch runs and the rebuild flag. State survives
 * crash() as it would survive SIGKILL (the page cache outlives the process);
 * durableSeq tracks what fsync reached. This is a model, not the product
 * store: it runs thousands of schedules a minute on a virtual clock.
 */
export class SimReplica {
  up = true;
  /** Bumped by each restart: connections to an earlier process are gone. */
  incarnation = 0;
  stalled = false;
  epoch = 0;
  size: number;
  lastSeq = 0;
  durableSeq = 0;
  private readonly history = new EpochRunLog();
  rebuildBase: number | null = null;
  /** exportRecords(after) below this fails NOT_FOUND, as after compaction. */
  compactedThrough = 0;
  private imageApplied = false;
  readonly blocks = new Map<number, Version[]>();
  private records: LogRecord[] = [];
  private readonly stamped = new Set<string>();
  readonly snapshots = new Map<string, SnapshotInfo>();

  /** Requests that arrived while the process was stopped, served in order on resume. */
  readonly stallQueue: Array<() => void> = [];

  constructor(
    readonly id: string,
    size: number,
  ) {
    this.size = size;
  }

  /** SIGKILL: the process is gone; its files (and page cache) stay. */
  crash(): void {
    this.up = false;
    this.resume();
  }

  restart(): void {
    if (!this.up) this.incarnation++;
    this.up = true;
  }

  /** SIGSTOP. */
  stop(): void {
    this.stalled = true;
  }

  /** SIGCONT: serves what queued up meanwhile, in arrival order. */
  resume(): void {
    this.stalled = false;
    const queued = this.stallQueue.splice(0);
    for (const serve of queued) serve();
  }

  private fail(code: LinkErrorCodeValue, message: string): never {
    throw new ReplicaLinkError(code, this.id, message);
  }

  private check(epoch: number): void {
    if (epoch !== this.epoch) this.fail(LinkErrorCode.StaleEpoch, `epoch ${epoch} refused: promised ${this.epoch}`);
  }

  private range(offset: number, length: number): void {
    if (offset % SIM_BLOCK !== 0 || length % SIM_BLOCK !== 0 || offset + length > this.size) this.fail(LinkErrorCode.OutOfRange, `range ${offset}+${length} outside ${this.size}`);
  }

  private put(block: number, seq: number, data: Buffer | null): void {
    const versions = this.blocks.get(block) ?? [];
    if (versions.some((v) => v.seq === seq)) return;
    versions.push({ seq, data });
    versions.sort((a, b) => a.seq - b.seq);
    this.blocks.set(block, versions);
  }

  private append(record: LogRecord): void {
    this.records.push(record);
    if (record.type === 'write' || record.type === 'unmap') {
      this.stamped.add(`${record.epoch}:${record.seq}`);
      this.history.note(record.epoch, record.seq);
      this.lastSeq = Math.max(this.lastSeq, record.seq);
    }
  }

  private applyData(record: LogRecord): void {
    if (record.type === 'write') {
      for (let i = 0; i < record.data.length / SIM_BLOCK; i++) this.put(record.offset / SIM_BLOCK + i, record.seq, Buffer.from(record.data.subarray(i * SIM_BLOCK, (i + 1) * SIM_BLOCK)));
    } else if (record.type === 'unmap') {
      for (let i = 0; i < record.length / SIM_BLOCK; i++) this.put(record.offset / SIM_BLOCK + i, record.seq, null);
    }
  }

  write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): void {
    this.check(epoch);
    this.range(offset, data.length);
    const record: LogRecord = { type: 'write', epoch, seq, offset, data: Buffer.from(data) };
    this.applyData(record);
    this.append(record);
    if (fua) this.durableSeq = this.lastSeq;
  }

  unmap(epoch: number, seq: number, offset: number, length: number): void {
    this.check(epoch);
    this.range(offset, length);
    const record: LogRecord = { type: 'unmap', epoch, seq, offset, length };
    this.applyData(record);
    this.append(record);
  }

  flush(epoch: number): void {
    this.check(epoch);
    this.durableSeq = this.lastSeq;
  }

  /** The version of a block visible at `seq` (the head when Infinity). */
  valueAt(block: number, seq = Infinity): Buffer | null {
    const versions = this.blocks.get(block) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) if (versions[i].seq <= seq) return versions[i].data;
    return null;
  }

  /** The seq of the version visible at `seq`, 0 for a never-written block. */
  private seqAt(block: number, seq = Infinity): number {
    const versions = this.blocks.get(block) ?? [];
    for (let i = versions.length - 1; i >= 0; i--) if (versions[i].seq <= seq) return versions[i].seq;
    return 0;
  }

  read(offset: number, length: number, snapshot?: string): Buffer {
    this.range(offset, length);
    const at = snapshot === undefined ? Infinity : (this.snapshots.get(snapshot) ?? this.fail(LinkErrorCode.NotFound, `no snapshot ${snapshot}`)).seq;
    const out = Buffer.alloc(length);
    for (let i = 0; i < length / SIM_BLOCK; i++) this.valueAt(offset / SIM_BLOCK + i, at)?.copy(out, i * SIM_BLOCK);
    return out;
  }

  status(): ReplicaLinkStatus {
    return { replicaId: this.id, epoch: this.epoch, lastSeq: this.lastSeq, durableSeq: this.durableSeq, size: this.size, state: 'ok', runs: [...this.history.runs], rebuildBase: this.rebuildBase };
  }

  setEpoch(epoch: number): void {
    if (epoch <= this.epoch) this.fail(LinkErrorCode.StaleEpoch, `epoch ${epoch} refused: promised ${this.epoch}`);
    this.epoch = epoch;
  }

  truncateAfter(epoch: number, seq: number): void {
    this.check(epoch);
    // Below the compaction horizon the log cannot be cut back exactly; 0 (wipe) always works.
    if (seq > 0 && seq < this.compactedThrough) this.fail(LinkErrorCode.NotFound, `history before ${this.compactedThrough} was compacted`);
    for (const [block, versions] of this.blocks) {
      const kept = versions.filter((v) => v.seq <= seq);
      if (kept.length > 0) this.blocks.set(block, kept);
      else this.blocks.delete(block);
    }
    this.records = this.records.filter((r) => r.seq <= seq);
    this.stamped.clear();
    for (const r of this.records) if (r.type === 'write' || r.type === 'unmap') this.stamped.add(`${r.epoch}:${r.seq}`);
    for (const [name, snap] of this.snapshots) if (snap.seq > seq) this.snapshots.delete(name);
    this.history.clip(seq);
    this.lastSeq = this.lastRunSeq();
    this.durableSeq = Math.min(this.durableSeq, this.lastSeq);
    if (seq === 0) this.compactedThrough = 0;
  }

  beginRebuild(epoch: number, base: number): void {
    this.check(epoch);
    this.rebuildBase = base;
  }

  finishRebuild(epoch: number, upTo: number, runs: readonly EpochRun[]): void {
    this.check(epoch);
    this.history.replacePrefix(upTo, runs);
    this.lastSeq = Math.max(this.lastSeq, this.lastRunSeq());
    // A full copy holds each block's newest record only: older history is gone, as after compaction.
    if (this.imageApplied) this.compactedThrough = Math.max(this.compactedThrough, upTo);
    this.imageApplied = false;
    this.rebuildBase = null;
  }

  createSnapshot(epoch: number, name: string, seq: number): SnapshotInfo {
    this.check(epoch);
    if (this.snapshots.has(name)) this.fail(LinkErrorCode.AlreadyExists, `snapshot ${name} exists`);
    const info: SnapshotInfo = { name, seq, epoch, createdAt: new Date(0).toISOString(), sizeBytes: 0, exclusiveBytes: 0 };
    this.snapshots.set(name, info);
    this.records.push({ type: 'snapshot', epoch, seq, name });
    return info;
  }

  deleteSnapshot(epoch: number, name: string): void {
    this.check(epoch);
    if (!this.snapshots.delete(name)) this.fail(LinkErrorCode.NotFound, `no snapshot ${name}`);
    this.records = this.records.filter((r) => !(r.type === 'snapshot' && r.name === name));
  }

  listSnapshots(): SnapshotInfo[] {
    return [...this.snapshots.values()].sort((a, b) => a.seq - b.seq);
  }

  /** The head takes the snapshot's content at a new seq, as records a delta rebuild can replay. */
  revertToSnapshot(epoch: number, name: string, seq: number): void {
    this.check(epoch);
    const snap = this.snapshots.get(name) ?? this.fail(LinkErrorCode.NotFound, `no snapshot ${name}`);
    for (const block of [...this.blocks.keys()].sort((a, b) => a - b)) {
      const data = this.valueAt(block, snap.seq);
      const record: LogRecord = data ? { type: 'write', epoch, seq, offset: block * SIM_BLOCK, data } : { type: 'unmap', epoch, seq, offset: block * SIM_BLOCK, length: SIM_BLOCK };
      this.applyData(record);
      this.append(record);
    }
    this.history.note(epoch, seq);
    this.lastSeq = Math.max(this.lastSeq, seq);
  }

  exportRecords(afterSeq: number): LogRecord[] {
    if (afterSeq < this.compactedThrough) this.fail(LinkErrorCode.NotFound, `records after ${afterSeq} were compacted`);
    return this.records.filter((r) => r.seq > afterSeq && (r.type !== 'snapshot' || this.snapshots.has(r.name))).sort((a, b) => a.seq - b.seq);
  }

  exportImage(snapshot?: string): ImageExtent[] {
    const at = snapshot === undefined ? Infinity : (this.snapshots.get(snapshot) ?? this.fail(LinkErrorCode.NotFound, `no snapshot ${snapshot}`)).seq;
    const out: ImageExtent[] = [];
    for (const block of [...this.blocks.keys()].sort((a, b) => a - b)) {
      const seq = this.seqAt(block, at);
      if (seq === 0) continue;
      const data = this.valueAt(block, at);
      out.push(data ? { type: 'data', offset: block * SIM_BLOCK, data, seq } : { type: 'zero', offset: block * SIM_BLOCK, length: SIM_BLOCK, seq });
    }
    return out;
  }

  applyRecord(epoch: number, record: LogRecord): void {
    this.check(epoch);
    if (record.type === 'snapshot') {
      if (!this.snapshots.has(record.name)) this.createSnapshot(epoch, record.name, record.seq);
      return;
    }
    if (record.type === 'epoch') return;
    this.applyData(record);
    this.append(record);
  }

  applyExtent(epoch: number, extent: ImageExtent): void {
    this.check(epoch);
    this.imageApplied = true;
    const record: LogRecord = extent.type === 'data' ? { type: 'write', epoch: 0, seq: extent.seq, offset: extent.offset, data: extent.data } : { type: 'unmap', epoch: 0, seq: extent.seq, offset: extent.offset, length: extent.length };
    this.applyData(record);
  }

  resize(epoch: number, size: number): void {
    this.check(epoch);
    if (size < this.size) this.fail(LinkErrorCode.OutOfRange, `cannot shrink ${this.size} -> ${size}`);
    this.size = size;
  }

  /** Drops the log's history (as compaction would), so the next rebuild from here must copy in full. */
  compact(): void {
    this.compactedThrough = this.lastSeq;
  }

  /** Whether the log holds the record (epoch, seq): the ack-rule check counts these. */
  private lastRunSeq(): number {
    const runs = this.history.runs;
    return runs.length > 0 ? runs[runs.length - 1].to : 0;
  }

  hasRecord(epoch: number, seq: number): boolean {
    return this.stamped.has(`${epoch}:${seq}`);
  }
}
