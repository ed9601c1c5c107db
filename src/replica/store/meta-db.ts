import { Level } from 'level';
import type { AbstractBatchOperation } from 'abstract-level';
import type { EpochRun } from '../store-types';
import type { SegmentMeta } from './segment-set';

/** Replica identity, written once at creation (size changes on resize). */
export interface Identity {
  formatVersion: number;
  replicaId: string;
  volumeId: string;
  size: number;
  blockSize: number;
  createdAt: string;
}

export interface SnapshotRecordMeta {
  name: string;
  seq: number;
  epoch: number;
  createdAt: string;
  /** Volume size when taken: reads of a snapshot stop there. */
  size: number;
}

/**
 * An index checkpoint: every view's chunk table as chunk ids (-1 = none), the
 * segments it refers to, and the log position replay starts from.
 */
export interface Checkpoint {
  replaySegIdx: number;
  replayGen: number;
  replayOffset: number;
  lastSeq: number;
  /** Highest seq known durable when the checkpoint was taken. */
  durableSeq: number;
  nextChunkId: number;
  /** Highest seq of a record compaction dropped: exportRecords cannot go back past it. */
  droppedSeq: number;
  /** Seq of the last revert: a delta rebuild cannot cross it. */
  revertSeq: number;
  /** lastSeq when compaction last ran: truncateAfter cannot go back past it. */
  compactedSeq: number;
  /** The epoch runs up to lastSeq; replay of the log after the checkpoint extends them (absent before format 2). */
  runs?: EpochRun[];
  segments: SegmentMeta[];
  /** Blocks per index chunk (absent: 1024, the size before chunk.ts). */
  chunkBlocks?: number;
  head: number[];
  snapshots: Record<string, number[]>;
}

const K = {
  identity: 'identity',
  epoch: 'epoch',
  checkpoint: 'checkpoint',
  rebuild: 'rebuild-base',
  snapPrefix: 'snap:',
  chunkPrefix: 'chunk:',
};

export type ChunkWrite = { id: number; data: Buffer };

/**
 * LevelDB memory for a replica's metadata. The defaults (8 MiB block cache,
 * 4 MiB write buffer) suit a database that serves reads; this one is read
 * once at open (identity, checkpoint, index chunks) and written a checkpoint
 * at a time, so a full memtable or cache would only be idle resident memory.
 * A checkpoint batch larger than the write buffer is still written whole; it
 * only flushes the memtable to a table file sooner.
 */
const META_DB_MEMORY = { cacheSize: 512 * 1024, writeBufferSize: 1024 * 1024 } as const;

/** The replica's LevelDB: all metadata, written with sync so an acknowledged change survives a crash. */
export class MetaDb {
  private readonly db: Level<string, unknown>;

  constructor(location: string) {
    this.db = new Level<string, unknown>(location, { valueEncoding: 'json', ...META_DB_MEMORY });
  }

  open(): Promise<void> {
    return this.db.open();
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async identity(): Promise<Identity | undefined> {
    return (await this.db.get(K.identity)) as Identity | undefined;
  }

  putIdentity(id: Identity): Promise<void> {
    return this.db.put(K.identity, id, { sync: true });
  }

  async epoch(): Promise<number> {
    return ((await this.db.get(K.epoch)) as number | undefined) ?? 0;
  }

  putEpoch(epoch: number): Promise<void> {
    return this.db.put(K.epoch, epoch, { sync: true });
  }

  /** The rebuild flag: the seq up to which the log is a whole prefix, or null when no rebuild is unfinished. */
  async rebuildBase(): Promise<number | null> {
    const v = (await this.db.get(K.rebuild)) as number | undefined;
    return typeof v === 'number' ? v : null;
  }

  putRebuildBase(base: number | null): Promise<void> {
    return base === null ? this.db.del(K.rebuild, { sync: true }) : this.db.put(K.rebuild, base, { sync: true });
  }

  async snapshots(): Promise<SnapshotRecordMeta[]> {
    const out: SnapshotRecordMeta[] = [];
    for await (const [, value] of this.db.iterator({ gte: K.snapPrefix, lt: `${K.snapPrefix}\uffff` })) out.push(value as SnapshotRecordMeta);
    return out;
  }

  putSnapshot(s: SnapshotRecordMeta): Promise<void> {
    return this.db.put(K.snapPrefix + s.name, s, { sync: true });
  }

  delSnapshot(name: string): Promise<void> {
    return this.db.del(K.snapPrefix + name, { sync: true });
  }

  async checkpoint(): Promise<Checkpoint | undefined> {
    return (await this.db.get(K.checkpoint)) as Checkpoint | undefined;
  }

  async chunk(id: number): Promise<Uint8Array | undefined> {
    return this.db.get<string, Uint8Array>(K.chunkPrefix + id, { valueEncoding: 'view' });
  }

  /** Writes new chunks, the checkpoint and removes chunks no longer referenced, atomically. */
  async putCheckpoint(ckpt: Checkpoint, chunks: ChunkWrite[], dropChunks: number[]): Promise<void> {
    const ops: AbstractBatchOperation<Level<string, unknown>, string, unknown>[] = [];
    for (const c of chunks) ops.push({ type: 'put', key: K.chunkPrefix + c.id, value: c.data, valueEncoding: 'buffer' });
    for (const id of dropChunks) ops.push({ type: 'del', key: K.chunkPrefix + id });
    ops.push({ type: 'put', key: K.checkpoint, value: ckpt });
    await this.db.batch(ops, { sync: true });
  }

  /** Chunk ids stored, to clean up ones a crash left unreferenced. */
  async chunkIds(): Promise<number[]> {
    const ids: number[] = [];
    for await (const key of this.db.keys({ gte: K.chunkPrefix, lt: `${K.chunkPrefix}\uffff` })) ids.push(Number(key.slice(K.chunkPrefix.length)));
    return ids;
  }

  async delChunks(ids: number[]): Promise<void> {
    if (ids.length > 0) await this.db.batch(ids.map((id) => ({ type: 'del' as const, key: K.chunkPrefix + id })));
  }
}
