import { CHUNK_BLOCKS, Chunk, IndexView, decodeChunk, encodeChunk } from './block-index';
import { EpochRunLog } from './epoch-runs';
import type { Checkpoint, ChunkWrite } from './meta-db';
import type { StoreCore } from './store-core';

/**
 * Index checkpoints in LevelDB. A checkpoint lists every view's chunks by id;
 * a chunk unchanged since the previous checkpoint keeps its id and is not written
 * again, so a checkpoint costs what changed, not the whole index.
 */
export class Checkpointer {
  private nextChunkId = 1;
  private referenced = new Set<number>();
  private chain: Promise<void> = Promise.resolve();
  /** Log bytes appended since the last checkpoint (the periodic trigger). */
  bytesSince = 0;

  constructor(private readonly core: StoreCore) {}

  /** Takes a checkpoint after any in progress; resolves once it is durable. */
  run(): Promise<void> {
    const next = this.chain.then(() => this.once());
    this.chain = next.catch(() => undefined);
    return next;
  }

  private async once(): Promise<void> {
    const core = this.core;
    if (core.state === 'error') return;
    // Captured in one tick: the index then describes exactly the log before the active segment's end.
    const { ckpt, chunks, fresh, referenced } = this.capture();
    this.core.logger.debug({ chunks: chunks.length, lastSeq: ckpt.lastSeq }, 'checkpoint');
    try {
      await core.appender.syncActive();
      const drop = [...this.referenced].filter((id) => !referenced.has(id));
      await core.db.putCheckpoint(ckpt, chunks, drop);
      this.referenced = referenced;
      this.bytesSince = 0;
    } catch (err) {
      for (const c of fresh) c.persistedId = 0;
      throw err;
    }
  }

  private capture(): { ckpt: Checkpoint; chunks: ChunkWrite[]; fresh: Chunk[]; referenced: Set<number> } {
    const core = this.core;
    const chunks: ChunkWrite[] = [];
    const fresh: Chunk[] = [];
    const referenced = new Set<number>();
    const ids = (view: IndexView): number[] =>
      Array.from(view.table, (c) => {
        if (!c) return -1;
        if (c.persistedId === 0 || !this.referenced.has(c.persistedId)) {
          if (c.persistedId === 0 || !referenced.has(c.persistedId)) {
            c.persistedId = this.nextChunkId++;
            chunks.push({ id: c.persistedId, data: encodeChunk(c) });
            fresh.push(c);
          }
        }
        referenced.add(c.persistedId);
        return c.persistedId;
      });
    const snapshots: Record<string, number[]> = {};
    for (const [name, s] of core.snaps) snapshots[name] = ids(s.view);
    const head = ids(core.head);
    const active = core.appender.active;
    const ckpt: Checkpoint = {
      replaySegIdx: active?.idx ?? 0,
      replayGen: active?.gen ?? 0,
      replayOffset: active?.size ?? 0,
      lastSeq: core.lastSeq,
      durableSeq: core.durableSeq,
      nextChunkId: this.nextChunkId,
      droppedSeq: core.droppedSeq,
      revertSeq: core.revertSeq,
      compactedSeq: core.compactedSeq,
      runs: [...core.runs.runs],
      segments: core.segs.all().map((s) => core.segs.meta(s)),
      chunkBlocks: CHUNK_BLOCKS,
      head,
      snapshots,
    };
    return { ckpt, chunks, fresh, referenced };
  }

  /** Rebuilds the views from a stored checkpoint; chunks shared between views stay shared. */
  async load(ckpt: Checkpoint): Promise<void> {
    const core = this.core;
    // Chunk ids stand for ranges of CHUNK_BLOCKS blocks: another size would put entries on the wrong blocks.
    const blocks = ckpt.chunkBlocks ?? 1024;
    if (blocks !== CHUNK_BLOCKS) throw core.fail(`checkpoint holds index chunks of ${blocks} blocks, this version uses ${CHUNK_BLOCKS}: rebuild the replica`);
    this.nextChunkId = ckpt.nextChunkId;
    const uses = new Map<number, number>();
    const count = (ids: number[]): void => ids.forEach((id) => id >= 0 && uses.set(id, (uses.get(id) ?? 0) + 1));
    count(ckpt.head);
    const live = Object.entries(ckpt.snapshots).filter(([name]) => core.pendingSnaps.has(name));
    for (const [, ids] of live) count(ids);
    const head = new IndexView(core.blocks);
    const decoded = new Map<number, Chunk>();
    const build = async (ids: number[], view: IndexView): Promise<void> => {
      for (let ci = 0; ci < ids.length; ci++) {
        const id = ids[ci];
        if (typeof id !== 'number' || id < 0) continue;
        let c = decoded.get(id);
        if (!c) {
          const raw = await core.db.chunk(id);
          const owner = uses.get(id) === 1 && view === head ? head.owner : 0;
          c = raw ? (decodeChunk(raw, owner) ?? undefined) : undefined;
          if (!c) throw core.fail(`checkpoint chunk ${id} missing or malformed`);
          c.persistedId = id;
          decoded.set(id, c);
        }
        view.table[ci] = c;
      }
    };
    await build(ckpt.head, head);
    core.head = head;
    for (const [name, ids] of live) {
      const meta = core.pendingSnaps.get(name);
      if (!meta) continue;
      const view = new IndexView(meta.size / 4096);
      await build(ids, view);
      core.pendingSnaps.delete(name);
      core.snaps.set(name, { meta, view });
    }
    this.referenced = new Set(decoded.keys());
    core.droppedSeq = ckpt.droppedSeq;
    core.revertSeq = ckpt.revertSeq;
    core.compactedSeq = ckpt.compactedSeq ?? 0;
    core.lastSeq = ckpt.lastSeq;
    // A checkpoint from before runs were kept: the history is unknown, which
    // epoch 0 (never a controller's) says, so the controller rebuilds this replica in full.
    core.runs = new EpochRunLog(ckpt.runs ?? (ckpt.lastSeq > 0 ? [{ epoch: 0, from: 1, to: ckpt.lastSeq }] : []));
  }

  /** Chunk ids the current checkpoint does not use (left by a crash mid-checkpoint). */
  unreferenced(stored: number[]): number[] {
    return stored.filter((id) => !this.referenced.has(id));
  }
}
