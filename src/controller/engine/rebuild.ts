import { errorCode } from '../../common/errors';
import { sleep, type Clock } from './clock';
import { clipRuns } from '../../replica';
import { divergencePoint, position } from './epoch-runs';
import type { EngineMetrics } from './engine-metrics';
import { LinkErrorCode, type ReplicaLinkStatus } from './replica-link';
import type { SnapshotInfo } from '../../replica/store-types';
import type { ReplicaSet } from './replica-set';
import type { RebuildProgress, ReplicaSlot } from './replica-slot';
import { INTERNAL_PREFIX, isInternalSnapshot } from './snapshots';

export type RebuildOutcome = 'done' | 'failed' | 'needs-full';

export interface RebuildContext {
  readonly set: ReplicaSet;
  readonly clock: Clock;
  readonly metrics: EngineMetrics;
  readonly bytesPerSecond: number;
  readonly blockSize: number;
  size(): number;
}

/** Thrown inside a rebuild when the run must stop; carries which side failed. */
class RebuildAbort extends Error {
  constructor(
    readonly outcome: RebuildOutcome,
    readonly side?: ReplicaSlot,
    readonly generation?: number,
    readonly epoch?: number,
    options?: { cause?: unknown },
  ) {
    super(`rebuild stopped: ${outcome}`, options);
  }
}

/** Runs a call on one side of the rebuild, turning its failure into a RebuildAbort. */
async function on<T>(slot: ReplicaSlot, what: string, fn: () => Promise<T>, epoch: number): Promise<T> {
  const generation = slot.generation;
  try {
    return await slot.call(what, fn);
  } catch (err) {
    // NOT_FOUND from an export or a truncate: the history needed was compacted away.
    if (errorCode(err) === LinkErrorCode.NotFound && (what === 'export' || what === 'truncate')) throw new RebuildAbort('needs-full', undefined, undefined, undefined, { cause: err });
    throw new RebuildAbort('failed', slot, generation, epoch, { cause: err });
  }
}

/** Iterates an async iterable with every step under the source's timeout. */
async function* guarded<T>(slot: ReplicaSlot, iterable: AsyncIterable<T>, epoch: number): AsyncGenerator<T> {
  const it = iterable[Symbol.asyncIterator]();
  try {
    while (true) {
      const step = await on(slot, 'export', () => it.next(), epoch);
      if (step.done) return;
      yield step.value;
    }
  } finally {
    await it.return?.().catch(() => undefined);
  }
}

/**
 * Prepares a replica to rejoin (invariant 4): raises its epoch, finds where its
 * log stops agreeing with the source (or where it lacks one of the source's
 * snapshots), cuts everything after that point and persists the rebuild flag.
 * Returns the seq the copy starts after.
 */
async function prepare(ctx: RebuildContext, target: ReplicaSlot, source: ReplicaSlot, full: boolean, epoch: number): Promise<number> {
  let mine: ReplicaLinkStatus = await on(target, 'status', () => target.link.status(), epoch);
  if (mine.epoch < epoch) await on(target, 'setEpoch', () => target.link.setEpoch(epoch), epoch);
  mine = await on(target, 'status', () => target.link.status(), epoch);
  const theirs = await on(source, 'status', () => source.link.status(), epoch);
  let base = full || mine.state !== 'ok' ? 0 : divergencePoint({ runs: mine.runs, position: position(mine) }, { runs: theirs.runs, position: position(theirs) });
  const [mySnaps, theirSnaps] = await Promise.all([on(target, 'listSnapshots', () => target.link.listSnapshots(), epoch), userSnapshots(source, epoch)]);
  for (const snap of theirSnaps) {
    if (!mySnaps.some((m) => m.name === snap.name && m.seq === snap.seq)) base = Math.max(0, Math.min(base, snap.seq - 1));
  }
  for (const snap of mySnaps) {
    const kept = theirSnaps.some((t) => t.name === snap.name && t.seq === snap.seq);
    if (!kept && snap.seq <= base) await on(target, 'deleteSnapshot', () => target.link.deleteSnapshot(epoch, snap.name), epoch);
  }
  if (mine.lastSeq > base || base === 0) await on(target, 'truncate', () => target.link.truncateAfter(epoch, base), epoch);
  await grow(ctx, target, mine.size, epoch);
  await on(target, 'beginRebuild', () => target.link.beginRebuild(epoch, base), epoch);
  return base;
}

/**
 * Grows the target to the volume's size. A target larger than the volume
 * holds a resize that failed elsewhere; volumes never shrink, so it keeps it.
 */
async function grow(ctx: RebuildContext, target: ReplicaSlot, current: number, epoch: number): Promise<void> {
  const size = ctx.size();
  if (current < size) await on(target, 'resize', () => target.link.resize(epoch, size), epoch);
}

/** Keeps the copy under its byte budget so the volume keeps serving. */
async function throttle(ctx: RebuildContext, progress: RebuildProgress): Promise<void> {
  if (ctx.bytesPerSecond <= 0) return;
  const due = progress.startedAt + (progress.bytesDone / ctx.bytesPerSecond) * 1000;
  const wait = due - ctx.clock.now();
  if (wait > 0) await sleep(ctx.clock, wait);
}

/**
 * Keeps up to `size` applies in flight so a rebuild over a network link is
 * not one round trip per record; the first failure is rethrown. Order among
 * them does not matter (per block the higher seq wins).
 */
class ApplyWindow {
  private readonly inflight = new Set<Promise<void>>();
  private failure: unknown;

  constructor(private readonly size: number) {}

  async add(apply: Promise<void>): Promise<void> {
    const tracked: Promise<void> = apply.then(
      () => void this.inflight.delete(tracked),
      (err: unknown) => {
        this.failure ??= err;
        this.inflight.delete(tracked);
      },
    );
    this.inflight.add(tracked);
    while (this.failure === undefined && this.inflight.size >= this.size) await Promise.race(this.inflight);
    if (this.failure !== undefined) throw this.failure;
  }

  async drain(): Promise<void> {
    await Promise.all(this.inflight);
    if (this.failure !== undefined) throw this.failure;
  }
}

const WINDOW = 32;

async function copyDelta(ctx: RebuildContext, target: ReplicaSlot, source: ReplicaSlot, base: number, join: number, progress: RebuildProgress, live: () => void, epoch: number): Promise<void> {
  const window = new ApplyWindow(WINDOW);
  try {
    for await (const record of guarded(source, source.link.exportRecords(base), epoch)) {
      if (record.seq >= join) break;
      live();
      // A snapshot record freezes the view at its seq: everything before it lands first.
      if (record.type === 'snapshot') await window.drain();
      await window.add(on(target, 'apply', () => target.link.applyRecord(epoch, record), epoch));
      if (record.type === 'snapshot') await window.drain();
      progress.bytesDone += record.type === 'write' ? record.data.length : ctx.blockSize;
      progress.bytesTotal = Math.max(progress.bytesTotal, progress.bytesDone);
      ctx.metrics.rebuild(target.id, progress.bytesDone, progress.bytesTotal);
      await throttle(ctx, progress);
    }
  } finally {
    await window.drain().catch(() => undefined);
  }
  await window.drain();
}

async function copyImage(ctx: RebuildContext, target: ReplicaSlot, source: ReplicaSlot, snapshot: string | undefined, progress: RebuildProgress, live: () => void, epoch: number): Promise<void> {
  const window = new ApplyWindow(WINDOW);
  try {
    for await (const extent of guarded(source, source.link.exportImage({ snapshot }), epoch)) {
      live();
      await window.add(on(target, 'apply', () => target.link.applyExtent(epoch, extent), epoch));
      progress.bytesDone += extent.type === 'data' ? extent.data.length : ctx.blockSize;
      ctx.metrics.rebuild(target.id, progress.bytesDone, progress.bytesTotal);
      await throttle(ctx, progress);
    }
  } finally {
    await window.drain().catch(() => undefined);
  }
  await window.drain();
}

async function userSnapshots(slot: ReplicaSlot, epoch: number): Promise<SnapshotInfo[]> {
  return (await on(slot, 'listSnapshots', () => slot.link.listSnapshots(), epoch)).filter((s) => !isInternalSnapshot(s.name));
}

/**
 * Full copy: each snapshot's image, then the snapshot cut on the target, then
 * the head as of `join - 1`. The head is read through a snapshot the engine
 * cuts on the source at that seq: the live head may already hold writes from
 * `join` on, and copying those instead of the blocks they overwrote would
 * leave the target's view between `join` and them (a snapshot cut meanwhile)
 * wrong.
 */
async function copyFull(ctx: RebuildContext, target: ReplicaSlot, source: ReplicaSlot, join: number, progress: RebuildProgress, live: () => void, epoch: number): Promise<void> {
  // Snapshots at or below the base survived the truncation and are already right.
  const kept = await on(target, 'listSnapshots', () => target.link.listSnapshots(), epoch);
  const all = await on(source, 'listSnapshots', () => source.link.listSnapshots(), epoch);
  for (const stale of all.filter((s) => isInternalSnapshot(s.name))) await on(source, 'deleteSnapshot', () => source.link.deleteSnapshot(epoch, stale.name), epoch);
  const snaps = all.filter((s) => !isInternalSnapshot(s.name) && !kept.some((k) => k.name === s.name && k.seq === s.seq)).sort((a, b) => a.seq - b.seq);
  progress.bytesTotal = ctx.size() * (snaps.length + 1);
  for (const snap of snaps) {
    await copyImage(ctx, target, source, snap.name, progress, live, epoch);
    await on(target, 'createSnapshot', () => target.link.createSnapshot(epoch, snap.name, snap.seq), epoch);
  }
  const view = `${INTERNAL_PREFIX}${target.id}-${join}`;
  await on(source, 'createSnapshot', () => source.link.createSnapshot(epoch, view, join - 1), epoch);
  try {
    await copyImage(ctx, target, source, view, progress, live, epoch);
  } finally {
    await source.link.deleteSnapshot(epoch, view).catch(() => undefined);
  }
}

/**
 * Brings one replica from ERR back to RW (invariant 5): prepare, join the
 * write set in WO at seq `join` so it receives every new write, copy what it
 * lacks below `join` from the source (per block the higher seq wins, so the
 * copy and live writes interleave safely), then clear its rebuild flag and
 * make it RW. Any failure leaves it in ERR for the next attempt.
 */
export async function rebuildReplica(ctx: RebuildContext, target: ReplicaSlot, source: ReplicaSlot, full: boolean): Promise<RebuildOutcome> {
  const { set } = ctx;
  const epoch = set.epoch;
  try {
    const base = await prepare(ctx, target, source, full, epoch);
    if (set.fenced || set.epoch !== epoch || source.mode !== 'RW' || target.mode !== 'ERR') return 'failed';
    const join = set.seq + 1;
    set.setMode(target, 'rebuild-start');
    const generation = target.generation;
    const sourceGeneration = source.generation;
    const live = (): void => {
      if (target.generation !== generation || source.generation !== sourceGeneration || set.fenced || set.epoch !== epoch) throw new RebuildAbort('failed');
    };
    const progress: RebuildProgress = { kind: full || base === 0 ? 'full' : 'delta', bytesDone: 0, bytesTotal: (join - 1 - base) * ctx.blockSize, startedAt: ctx.clock.now() };
    target.rebuild = progress;
    target.logger.info({ base, join, kind: progress.kind, source: source.id }, 'rebuild started');
    // Requests below `join` may still be on their way to the source on another
    // connection; the copy must see them all.
    await source.settledBelow(join, sourceGeneration);
    live();
    if (progress.kind === 'full') await copyFull(ctx, target, source, join, progress, live, epoch);
    else await copyDelta(ctx, target, source, base, join, progress, live, epoch);
    const theirs = await on(source, 'status', () => source.link.status(), epoch);
    // A resize sent before the join did not reach the target.
    await grow(ctx, target, (await on(target, 'status', () => target.link.status(), epoch)).size, epoch);
    await on(target, 'finishRebuild', () => target.link.finishRebuild(epoch, join - 1, clipRuns(theirs.runs, join - 1)), epoch);
    await dropExtraSnapshots(target, source, epoch);
    live();
    set.setMode(target, 'rebuild-done');
    target.logger.info({ bytes: progress.bytesDone, ms: Math.round(ctx.clock.now() - progress.startedAt) }, 'rebuild finished');
    return 'done';
  } catch (err) {
    const abort = err instanceof RebuildAbort ? err : new RebuildAbort('failed', target, target.generation, epoch, { cause: err });
    if (abort.side && abort.generation !== undefined) set.failed(abort.side, abort.generation, abort.cause, 'rebuild', abort.epoch);
    if (target.mode === 'WO') set.setMode(target, 'failed', abort.outcome === 'needs-full' ? 'rebuild-needs-full' : 'rebuild-failed');
    target.logger.warn({ outcome: abort.outcome, err: abort.cause }, 'rebuild stopped');
    return abort.outcome;
  } finally {
    target.rebuild = undefined;
  }
}

/** Snapshots deleted on the source while the copy ran may have been recreated by it. */
async function dropExtraSnapshots(target: ReplicaSlot, source: ReplicaSlot, epoch: number): Promise<void> {
  const [mine, theirs] = await Promise.all([on(target, 'listSnapshots', () => target.link.listSnapshots(), epoch), userSnapshots(source, epoch)]);
  for (const snap of mine) {
    if (!theirs.some((t) => t.name === snap.name)) await on(target, 'deleteSnapshot', () => target.link.deleteSnapshot(epoch, snap.name), epoch);
  }
}
