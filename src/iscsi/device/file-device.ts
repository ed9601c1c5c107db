import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, constants as fsConstants, readSync, writeSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { BlockDeviceError, type BlockDevice } from '../block-device';
import { ResizeNotifier, checkRange } from './device-common';

const execFileAsync = promisify(execFile);

/** Ranges at least this large are deallocated with a hole punch instead of written with zeros. */
const PUNCH_THRESHOLD = 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(PUNCH_THRESHOLD);

/** Requests up to this size may run synchronously on the event loop (see SyncGate). */
const SYNC_MAX_BYTES = 64 * 1024;
/** A synchronous call slower than this may have waited for the disk: the process's block reads are checked. */
const SUSPECT_MS = 0.2;
/** A synchronous call slower than this stalled (writeback throttling, a busy disk), whatever the cause. */
const STALL_MS = 100;
/** How long the device stays on the thread pool once the disk was found in the path. */
const ASYNC_HOLD_MS = 500;
/** Longest hold, reached by doubling while holds follow each other closely. */
const MAX_HOLD_MS = 30_000;
/**
 * Share of wall time the event loop may spend in synchronous reads from
 * storage. A miss blocks every session for about a millisecond; the pool
 * handoff costs some 20 us of CPU on every request, 400 ms per second at
 * 20,000 requests per second, so a tenth of the loop spent on misses is
 * still the cheaper side.
 */
const BLOCKED_SHARE = 0.1;
/** Time blocked on storage tolerated in one burst (ms) before the device moves to the pool. */
const BLOCKED_BURST_MS = 100;

export interface FileDeviceOptions {
  size?: number;
  blockSize?: number;
  /** Largest request served synchronously; 0 sends every request to the thread pool. */
  syncMaxBytes?: number;
  /** A synchronous call slower than this (ms) checks whether the process read from storage. */
  suspectMs?: number;
  /** A synchronous call slower than this (ms) moves the device to the thread pool for a while. */
  stallMs?: number;
  /** Time (ms) synchronous calls may spend reading from storage in one burst before the pool takes over. */
  blockedBurstMs?: number;
  /** First stay (ms) on the thread pool after the disk got in the way. */
  asyncHoldMs?: number;
}

/** Blocks this process has read from storage (getrusage ru_inblock): grows only on page-cache misses. */
const diskReads = (): number => process.resourceUsage().fsRead;

/**
 * Chooses between synchronous pread/pwrite on the event loop and libuv's
 * thread pool. A 4 KiB page-cache hit takes a few microseconds; handing it to
 * the pool costs a mutex, a condition-variable wake-up of a worker and an
 * async wake-up of the loop, several times the copy itself (tgtd's worker
 * threads pay the same handoff). So calls run synchronously while the data
 * comes from the page cache.
 *
 * A slow call alone proves nothing on a busy machine (the thread may just
 * have been preempted), so a slow call checks whether the process read blocks
 * from storage meanwhile (a cache miss, or a partial-block write that had to
 * read first). Occasional misses are cheap next to the handoff saved on every
 * hit, so their time goes into a leaky bucket that drains at BLOCKED_SHARE of
 * wall time; once it overflows, or one call stalls outright, every request
 * goes to the pool for a hold period. A hold that follows the previous one
 * within its own length lasts twice as long (up to MAX_HOLD_MS), so a disk
 * that keeps stalling synchronous calls (sustained writeback throttling) is
 * probed ever more rarely. A cold disk then costs the other
 * sessions a bounded share of the loop, not one blocking call per request.
 */
class SyncGate {
  private asyncUntil = 0;
  private holdMs: number;
  private lastHoldEnd = Number.NEGATIVE_INFINITY;
  private lastDiskReads = diskReads();
  private blockedMs = 0;
  private blockedAt = 0;
  syncOps = 0;
  asyncOps = 0;

  constructor(private readonly limits: { maxBytes: number; suspectMs: number; stallMs: number; burstMs: number; holdMs: number }) {
    this.holdMs = limits.holdMs;
  }

  allows(length: number): boolean {
    let sync = length <= this.limits.maxBytes;
    if (sync && this.asyncUntil !== 0) {
      sync = performance.now() >= this.asyncUntil;
      if (sync) {
        // Reads done on the pool meanwhile must not count against the next synchronous call.
        this.asyncUntil = 0;
        this.lastDiskReads = diskReads();
      }
    }
    if (sync) this.syncOps++;
    else this.asyncOps++;
    return sync;
  }

  /** Records how long a synchronous call took, from `started` (performance.now()). */
  took(started: number): void {
    const now = performance.now();
    const elapsed = now - started;
    const { suspectMs, stallMs, burstMs } = this.limits;
    if (elapsed <= suspectMs && elapsed <= stallMs) return;
    const reads = diskReads();
    let hold = elapsed > stallMs;
    if (reads !== this.lastDiskReads) {
      this.blockedMs = Math.max(0, this.blockedMs - (now - this.blockedAt) * BLOCKED_SHARE) + elapsed;
      this.blockedAt = now;
      hold ||= this.blockedMs > burstMs;
    }
    this.lastDiskReads = reads;
    if (hold) {
      this.holdMs = now - this.lastHoldEnd < this.holdMs ? Math.min(this.holdMs * 2, MAX_HOLD_MS) : this.limits.holdMs;
      this.asyncUntil = now + this.holdMs;
      this.lastHoldEnd = this.asyncUntil;
      this.blockedMs = 0;
    }
  }
}

/**
 * A BlockDevice over a regular file (sparse when created here). Writes land in
 * the page cache (the target reports WCE=1); FUA and flush call fdatasync.
 */
export class FileDevice implements BlockDevice {
  readonly blockSize: number;
  readonly id: string;
  private capacity: number;
  private readonly resizeNotifier = new ResizeNotifier();
  private readonly gate: SyncGate;

  private constructor(
    private readonly path: string,
    private readonly handle: fs.FileHandle,
    capacity: number,
    blockSize: number,
    gate: SyncGate,
  ) {
    this.capacity = capacity;
    this.blockSize = blockSize;
    this.gate = gate;
    // Derived from the path so the identity survives restarts of `trireme target`.
    this.id = createHash('sha256').update(`file:${path}`).digest('hex').slice(0, 32);
  }

  /**
   * Opens (creating if needed) the file. With `size`, a smaller file is extended
   * sparsely; without it, the file's own size is used.
   */
  static async open(path: string, options: FileDeviceOptions = {}): Promise<FileDevice> {
    const blockSize = options.blockSize ?? 512;
    if (blockSize !== 512 && blockSize !== 4096) throw new BlockDeviceError('io', `unsupported block size ${blockSize}`);
    const handle = await fs.open(path, fsConstants.O_RDWR | fsConstants.O_CREAT, 0o600);
    try {
      const current = (await handle.stat()).size;
      const size = options.size ?? current;
      if (size <= 0 || size % blockSize !== 0) {
        throw new BlockDeviceError('io', `size ${size} of ${path} is not a positive multiple of ${blockSize}`);
      }
      if (current < size) await handle.truncate(size);
      const gate = new SyncGate({
        maxBytes: options.syncMaxBytes ?? SYNC_MAX_BYTES,
        suspectMs: options.suspectMs ?? SUSPECT_MS,
        stallMs: options.stallMs ?? STALL_MS,
        burstMs: options.blockedBurstMs ?? BLOCKED_BURST_MS,
        holdMs: options.asyncHoldMs ?? ASYNC_HOLD_MS,
      });
      return new FileDevice(path, handle, size, blockSize, gate);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  size(): number {
    return this.capacity;
  }

  /** Requests served synchronously and through the thread pool so far. */
  ioCounts(): { sync: number; async: number } {
    return { sync: this.gate.syncOps, async: this.gate.asyncOps };
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    // Not zero-filled: every byte is either read or zeroed below.
    const out = Buffer.allocUnsafe(length);
    let done = 0;
    if (this.gate.allows(length)) done = this.readSync(out, offset);
    else {
      while (done < length) {
        const { bytesRead } = await this.io(() => this.handle.read(out, done, length - done, offset + done));
        if (bytesRead === 0) break;
        done += bytesRead;
      }
    }
    // Past the end of a file shorter than the device (truncated behind our back) reads as zeros.
    if (done < length) out.fill(0, done);
    return out;
  }

  async write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    checkRange(this, offset, data.length);
    let done = 0;
    if (this.gate.allows(data.length)) done = this.writeSync(data, offset);
    while (done < data.length) {
      const { bytesWritten } = await this.io(() => this.handle.write(data, done, data.length - done, offset + done));
      done += bytesWritten;
    }
    if (options.fua) await this.flush();
  }

  /** Synchronous pread until done or end of file; returns the bytes read. */
  private readSync(out: Buffer, offset: number): number {
    const started = performance.now();
    let done = 0;
    try {
      while (done < out.length) {
        const n = readSync(this.handle.fd, out, done, out.length - done, offset + done);
        if (n === 0) break;
        done += n;
      }
    } catch (err) {
      throw this.deviceError(err);
    }
    this.gate.took(started);
    return done;
  }

  /** Synchronous pwrite of the whole buffer; returns the bytes written. */
  private writeSync(data: Buffer, offset: number): number {
    const started = performance.now();
    let done = 0;
    try {
      while (done < data.length) done += writeSync(this.handle.fd, data, done, data.length - done, offset + done);
    } catch (err) {
      throw this.deviceError(err);
    }
    this.gate.took(started);
    return done;
  }

  async flush(): Promise<void> {
    await this.io(() => this.handle.datasync());
  }

  async unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    if (length >= PUNCH_THRESHOLD && (await this.punchHole(offset, length))) return;
    for (let done = 0; done < length; done += ZERO_CHUNK.length) {
      const n = Math.min(ZERO_CHUNK.length, length - done);
      await this.io(() => this.handle.write(ZERO_CHUNK, 0, n, offset + done));
    }
  }

  /** Grows the device (the file is extended sparsely) and tells listeners. */
  async resize(newSize: number): Promise<void> {
    if (newSize < this.capacity || newSize % this.blockSize !== 0) {
      throw new BlockDeviceError('io', `cannot resize from ${this.capacity} to ${newSize}: only growing by whole blocks`);
    }
    await this.io(() => this.handle.truncate(newSize));
    this.capacity = newSize;
    this.resizeNotifier.emit(newSize);
  }

  onResize(listener: (newSize: number) => void): () => void {
    return this.resizeNotifier.add(listener);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }

  /**
   * Node has no fallocate(2); util-linux's fallocate does the punch. Returns false
   * (and the caller writes zeros) where the filesystem or tool cannot.
   */
  private async punchHole(offset: number, length: number): Promise<boolean> {
    try {
      await execFileAsync('fallocate', ['--punch-hole', '--keep-size', '-o', String(offset), '-l', String(length), this.path]);
      return true;
    } catch {
      return false;
    }
  }

  private async io<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (err) {
      throw this.deviceError(err);
    }
  }

  private deviceError(err: unknown): BlockDeviceError {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOSPC' || code === 'EDQUOT') return new BlockDeviceError('no-space', `no space left on the device backing ${this.path}`, { cause: err });
    if (code === 'EIO') return new BlockDeviceError('medium', `I/O error on ${this.path}`, { cause: err });
    return new BlockDeviceError('io', `file device ${this.path}: ${(err as Error).message}`, { cause: err });
  }
}
