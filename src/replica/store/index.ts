import { randomUUID } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Registry } from 'prom-client';
import type { Logger } from '../../common/logger';
import { BLOCK_SIZE } from '../store-types';
import { Appender } from './appender';
import { Checkpointer } from './checkpoint';
import { Compactor, type CompactionOptions } from './compactor';
import { StoreError } from './errors';
import { LogStore } from './log-store';
import { MetaDb, type Identity } from './meta-db';
import { storeMetrics } from './metrics';
import { recover } from './recovery';
import { SegmentSet } from './segment-set';

export { StoreError } from './errors';
export type { CompactionOptions } from './compactor';
export { LogStore } from './log-store';

export interface OpenReplicaStoreOptions {
  dir: string;
  /** Required when creating; checked against the stored size when opening. */
  size?: number;
  volumeId?: string;
  replicaId?: string;
  logger: Logger;
  registry?: Registry;
  /** Bytes per segment file before a new one starts (default 64 MiB, at most 1 GiB). */
  segmentSize?: number;
  compaction?: CompactionOptions;
  /** Log bytes between index checkpoints (default 256 MiB). */
  checkpointBytes?: number;
  checkpointIntervalMs?: number;
}

export const DEFAULT_SEGMENT_SIZE = 64 << 20;
const MAX_SEGMENT_SIZE = 1 << 30;
const FORMAT_VERSION = 1;

function hasSegments(dir: string): boolean {
  const segDir = path.join(dir, 'segments');
  return fs.existsSync(segDir) && fs.readdirSync(segDir).length > 0;
}

async function identityFor(db: MetaDb, o: OpenReplicaStoreOptions): Promise<{ id: Identity; created: boolean }> {
  const stored = await db.identity();
  if (!stored) {
    if (hasSegments(o.dir)) throw new StoreError('ERR_CORRUPT', `${o.dir} holds segments but no replica identity`);
    if (o.size === undefined || !Number.isSafeInteger(o.size) || o.size <= 0 || o.size % BLOCK_SIZE !== 0) {
      throw new StoreError('ERR_INVALID_ARGUMENT', `creating a replica needs a size that is a positive multiple of ${BLOCK_SIZE}, got ${o.size}`);
    }
    const id: Identity = {
      formatVersion: FORMAT_VERSION,
      replicaId: o.replicaId ?? randomUUID(),
      volumeId: o.volumeId ?? randomUUID(),
      size: o.size,
      blockSize: BLOCK_SIZE,
      createdAt: new Date().toISOString(),
    };
    await db.putIdentity(id);
    return { id, created: true };
  }
  const id = stored;
  if (id.formatVersion !== FORMAT_VERSION) throw new StoreError('ERR_INVALID_ARGUMENT', `unsupported replica format ${id.formatVersion}`);
  if (o.size !== undefined && o.size !== id.size) throw new StoreError('ERR_INVALID_ARGUMENT', `size mismatch: replica holds ${id.size} bytes, ${o.size} requested`);
  if (o.volumeId !== undefined && o.volumeId !== id.volumeId) throw new StoreError('ERR_INVALID_ARGUMENT', `volume mismatch: replica belongs to ${id.volumeId}, not ${o.volumeId}`);
  if (o.replicaId !== undefined && o.replicaId !== id.replicaId) throw new StoreError('ERR_INVALID_ARGUMENT', `replica id mismatch: ${id.replicaId}, not ${o.replicaId}`);
  return { id, created: false };
}

/**
 * Creates a replica in an empty `dir` (size required) or opens the one there:
 * LevelDB metadata under dir/meta, segment files under dir/segments. A replica
 * that recovery finds damaged opens in state 'error' (it refuses I/O and asks
 * for a rebuild) rather than failing to open, so it can still report itself.
 * The LogStore returned implements ReplicaStore (src/replica/store-types.ts).
 */
export async function openReplicaStore(o: OpenReplicaStoreOptions): Promise<LogStore> {
  const segmentSize = o.segmentSize ?? DEFAULT_SEGMENT_SIZE;
  if (!Number.isSafeInteger(segmentSize) || segmentSize < 1 << 20 || segmentSize > MAX_SEGMENT_SIZE) {
    throw new StoreError('ERR_INVALID_ARGUMENT', `segmentSize must be between 1 MiB and 1 GiB, got ${segmentSize}`);
  }
  fs.mkdirSync(o.dir, { recursive: true });
  const db = new MetaDb(path.join(o.dir, 'meta'));
  await db.open();
  let segs: SegmentSet | null = null;
  try {
    const { id: identity, created } = await identityFor(db, o);
    segs = new SegmentSet(o.dir);
    const logger = o.logger.child({ replica: identity.replicaId, volume: identity.volumeId });
    let store: LogStore | null = null;
    const appender = (): Appender =>
      new Appender(segs as SegmentSet, {
        segmentSize,
        maxBatchBytes: 8 << 20,
        onSync: (s) => store?.metrics?.fsync.observe({ replica: identity.replicaId }, s),
        onFatal: (err) => store?.fail('fdatasync failed', err),
      });
    store = new LogStore(o.dir, db, segs, identity, logger, appender, null, segmentSize);
    const s = store;
    s.ckptr = new Checkpointer(s);
    s.compactor = new Compactor(s);
    if (o.checkpointBytes !== undefined) s.checkpointBytes = o.checkpointBytes;
    try {
      await recover(s, s.ckptr);
    } catch (err) {
      if (s.state !== 'error') throw err;
    }
    if (o.registry) {
      s.metrics = storeMetrics(o.registry, identity.replicaId, {
        segments: () => s.segs.all().length,
        liveBytes: () => s.space().liveBytes,
        deadBytes: () => s.space().totalBytes - s.space().liveBytes,
        indexBytes: () => s.indexBytes(),
      });
    }
    if (s.state === 'ok') s.start(o.compaction ?? {}, o.checkpointIntervalMs ?? 30_000);
    logger.info({ size: identity.size, lastSeq: s.lastSeq, epoch: s.epoch, state: s.state, created }, 'replica store open');
    return s;
  } catch (err) {
    await segs?.closeAll().catch(() => undefined);
    await db.close().catch(() => undefined);
    throw err;
  }
}
