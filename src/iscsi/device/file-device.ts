import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import { promisify } from 'node:util';
import { BlockDeviceError, type BlockDevice } from '../block-device';
import { ResizeNotifier, checkRange } from './device-common';

const execFileAsync = promisify(execFile);

/** Ranges at least this large are deallocated with a hole punch instead of written with zeros. */
const PUNCH_THRESHOLD = 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(PUNCH_THRESHOLD);

/**
 * A BlockDevice over a regular file (sparse when created here). Writes land in
 * the page cache (the target reports WCE=1); FUA and flush call fdatasync.
 */
export class FileDevice implements BlockDevice {
  readonly blockSize: number;
  readonly id: string;
  private capacity: number;
  private readonly resizeNotifier = new ResizeNotifier();

  private constructor(
    private readonly path: string,
    private readonly handle: fs.FileHandle,
    capacity: number,
    blockSize: number,
  ) {
    this.capacity = capacity;
    this.blockSize = blockSize;
    // Derived from the path so the identity survives restarts of `trireme target`.
    this.id = createHash('sha256').update(`file:${path}`).digest('hex').slice(0, 32);
  }

  /**
   * Opens (creating if needed) the file. With `size`, a smaller file is extended
   * sparsely; without it, the file's own size is used.
   */
  static async open(path: string, options: { size?: number; blockSize?: number } = {}): Promise<FileDevice> {
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
      return new FileDevice(path, handle, size, blockSize);
    } catch (err) {
      await handle.close();
      throw err;
    }
  }

  size(): number {
    return this.capacity;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    let done = 0;
    while (done < length) {
      const { bytesRead } = await this.io(() => this.handle.read(out, done, length - done, offset + done));
      // Past the end of a file shorter than the device reads as zeros (already in `out`).
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return out;
  }

  async write(offset: number, data: Buffer, options: { fua?: boolean } = {}): Promise<void> {
    checkRange(this, offset, data.length);
    let done = 0;
    while (done < data.length) {
      const { bytesWritten } = await this.io(() => this.handle.write(data, done, data.length - done, offset + done));
      done += bytesWritten;
    }
    if (options.fua) await this.flush();
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
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOSPC' || code === 'EDQUOT') throw new BlockDeviceError('no-space', `no space left on the device backing ${this.path}`, { cause: err });
      if (code === 'EIO') throw new BlockDeviceError('medium', `I/O error on ${this.path}`, { cause: err });
      throw new BlockDeviceError('io', `file device ${this.path}: ${(err as Error).message}`, { cause: err });
    }
  }
}
