import { StoreError, isNoSpace } from './errors';
import { fdatasync, ftruncate, pwritevFull } from './fs-io';
import { SEGMENT_HEADER_SIZE, SegmentKind } from './record-codec';
import type { Segment, SegmentSet } from './segment-set';

/** Called synchronously, in log order, once a record is in the file: the index update. */
export type OnAppended = (seg: Segment, offset: number) => void;

interface Pending {
  buf: Buffer | null;
  sync: boolean;
  onAppended: OnAppended | null;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface AppenderOptions {
  segmentSize: number;
  /** Upper bound of one writev (coalesced records). */
  maxBatchBytes: number;
  onSync: (seconds: number) => void;
  /** An fdatasync failure leaves page-cache state unknown: the replica must stop serving. */
  onFatal: (err: Error) => void;
}

/**
 * The single writer of the live log. Records queued while a write is in flight
 * are coalesced into one writev, and every flush or FUA queued meanwhile shares
 * one fdatasync (group commit). Index updates run in log order right after the
 * write, so the index always describes a prefix of the log.
 */
export class Appender {
  active: Segment | null = null;
  private queue: Pending[] = [];
  private running = false;
  private idleWaiters: (() => void)[] = [];
  private paused = 0;

  constructor(
    private readonly segs: SegmentSet,
    private readonly opts: AppenderOptions,
  ) {}

  private closed = false;

  append(buf: Buffer | null, sync: boolean, onAppended: OnAppended | null): Promise<void> {
    if (this.closed) return Promise.reject(new StoreError('ERR_CLOSED', 'replica store is closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ buf, sync, onAppended, resolve, reject });
      this.kick();
    });
  }

  /** Resolves when nothing is queued or being written; holds new batches until resume(). */
  async pause(): Promise<void> {
    this.paused++;
    if (this.running) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  resume(): void {
    this.paused--;
    this.kick();
  }

  /** Refuses further appends and fails any still queued (the store is closing). */
  close(): void {
    this.closed = true;
    for (const p of this.queue.splice(0)) p.reject(new StoreError('ERR_CLOSED', 'replica store is closed'));
  }

  /** fdatasync of the active segment outside the queue (checkpoints). */
  async syncActive(): Promise<void> {
    if (this.active) await this.timedSync(this.active);
  }

  private kick(): void {
    if (this.running || this.paused > 0 || this.queue.length === 0) return;
    this.running = true;
    void this.loop();
  }

  private async loop(): Promise<void> {
    while (this.queue.length > 0 && this.paused === 0) {
      const batch = this.take();
      await this.writeBatch(batch);
    }
    this.running = false;
    for (const w of this.idleWaiters.splice(0)) w();
  }

  private take(): Pending[] {
    let bytes = 0;
    let n = 0;
    while (n < this.queue.length) {
      const len = this.queue[n].buf?.length ?? 0;
      if (n > 0 && bytes + len > this.opts.maxBatchBytes) break;
      bytes += len;
      n++;
    }
    return this.queue.splice(0, n);
  }

  private async writeBatch(batch: Pending[]): Promise<void> {
    const bufs = batch.filter((p) => p.buf !== null).map((p) => p.buf as Buffer);
    const bytes = bufs.reduce((a, b) => a + b.length, 0);
    const sync = batch.some((p) => p.sync);
    let seg: Segment;
    try {
      seg = await this.segmentFor(bytes);
    } catch (err) {
      for (const p of batch) p.reject(mapError(err));
      return;
    }
    const start = seg.size;
    if (bufs.length > 0) {
      try {
        await pwritevFull(seg.fd, bufs, start);
      } catch (err) {
        // A short write leaves a partial record: cut it so the file ends at a record boundary.
        await ftruncate(seg.fd, start).catch(() => undefined);
        for (const p of batch) p.reject(mapError(err));
        return;
      }
    }
    let at = start;
    for (const p of batch) {
      if (p.buf) {
        p.onAppended?.(seg, at);
        at += p.buf.length;
      } else p.onAppended?.(seg, at);
    }
    seg.size = at;
    if (sync) {
      try {
        await this.timedSync(seg);
      } catch (err) {
        this.opts.onFatal(err as Error);
        for (const p of batch) p.reject(mapError(err));
        return;
      }
    }
    for (const p of batch) p.resolve();
  }

  private async timedSync(seg: Segment): Promise<void> {
    const t0 = process.hrtime.bigint();
    await fdatasync(seg.fd);
    this.opts.onSync(Number(process.hrtime.bigint() - t0) / 1e9);
  }

  /** The active segment, rolled to a new one when this batch would overflow it. */
  private async segmentFor(bytes: number): Promise<Segment> {
    const cur = this.active;
    if (cur && (cur.size + bytes <= this.opts.segmentSize || cur.size === SEGMENT_HEADER_SIZE)) return cur;
    const next = await this.segs.create(SegmentKind.Live);
    if (cur) {
      // The old segment must be complete on disk before records follow it in a newer one:
      // recovery treats damage anywhere but in the newest segment as corruption.
      try {
        await ftruncate(cur.fd, cur.size);
        await this.timedSync(cur);
      } catch (err) {
        this.segs.discard(next.idx);
        throw err;
      }
      cur.sealed = true;
    }
    this.active = next;
    return next;
  }
}

export function mapError(err: unknown): Error {
  if (err instanceof StoreError) return err;
  if (isNoSpace(err)) return new StoreError('ERR_NO_SPACE', 'no space left for the replica log', { cause: err });
  return err instanceof Error ? err : new Error(String(err));
}
