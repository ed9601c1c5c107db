import { randomUUID } from 'node:crypto';
import { BlockDeviceError, type BlockDevice } from '../block-device';
import { ResizeNotifier, checkRange } from './device-common';

/** Chunk granularity of the sparse store: only touched chunks take memory. */
const CHUNK_SIZE = 64 * 1024;

/**
 * A thin in-memory BlockDevice: chunks are allocated on first write and
 * released when a whole chunk is unmapped. For tests and `trireme target --device mem`.
 */
export class MemoryDevice implements BlockDevice {
  readonly blockSize: number;
  readonly id: string;
  private capacity: number;
  private readonly chunks = new Map<number, Buffer>();
  private readonly resizeNotifier = new ResizeNotifier();

  constructor(options: { size: number; blockSize?: number; id?: string }) {
    this.blockSize = options.blockSize ?? 512;
    if (this.blockSize !== 512 && this.blockSize !== 4096) throw new BlockDeviceError('io', `unsupported block size ${this.blockSize}`);
    if (options.size <= 0 || options.size % this.blockSize !== 0) throw new BlockDeviceError('io', `size ${options.size} is not a positive multiple of ${this.blockSize}`);
    this.capacity = options.size;
    this.id = options.id ?? randomUUID();
  }

  size(): number {
    return this.capacity;
  }

  async read(offset: number, length: number): Promise<Buffer> {
    checkRange(this, offset, length);
    const out = Buffer.alloc(length);
    this.forEachChunk(offset, length, (chunk, chunkOffset, outOffset, n) => {
      chunk?.copy(out, outOffset, chunkOffset, chunkOffset + n);
    });
    return out;
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data.length);
    this.forEachChunk(offset, data.length, (chunk, chunkOffset, dataOffset, n, index) => {
      let target = chunk;
      if (!target) {
        target = Buffer.alloc(CHUNK_SIZE);
        this.chunks.set(index, target);
      }
      data.copy(target, chunkOffset, dataOffset, dataOffset + n);
    });
  }

  async flush(): Promise<void> {}

  async unmap(offset: number, length: number): Promise<void> {
    checkRange(this, offset, length);
    this.forEachChunk(offset, length, (chunk, chunkOffset, _o, n, index) => {
      if (!chunk) return;
      if (n === CHUNK_SIZE) this.chunks.delete(index);
      else chunk.fill(0, chunkOffset, chunkOffset + n);
    });
  }

  /** Grows (or shrinks) the device and tells listeners; shrinking drops data past the end. */
  resize(newSize: number): void {
    if (newSize <= 0 || newSize % this.blockSize !== 0) throw new BlockDeviceError('io', `size ${newSize} is not a positive multiple of ${this.blockSize}`);
    if (newSize < this.capacity) {
      for (const index of this.chunks.keys()) if (index * CHUNK_SIZE >= newSize) this.chunks.delete(index);
      const last = this.chunks.get(Math.floor(newSize / CHUNK_SIZE));
      last?.fill(0, newSize % CHUNK_SIZE);
    }
    this.capacity = newSize;
    this.resizeNotifier.emit(newSize);
  }

  onResize(listener: (newSize: number) => void): () => void {
    return this.resizeNotifier.add(listener);
  }

  /** Bytes of memory held by written chunks (thin provisioning made visible). */
  allocatedBytes(): number {
    return this.chunks.size * CHUNK_SIZE;
  }

  async close(): Promise<void> {
    this.chunks.clear();
  }

  private forEachChunk(
    offset: number,
    length: number,
    visit: (chunk: Buffer | undefined, chunkOffset: number, bufferOffset: number, n: number, index: number) => void,
  ): void {
    let done = 0;
    while (done < length) {
      const position = offset + done;
      const index = Math.floor(position / CHUNK_SIZE);
      const chunkOffset = position % CHUNK_SIZE;
      const n = Math.min(CHUNK_SIZE - chunkOffset, length - done);
      visit(this.chunks.get(index), chunkOffset, done, n, index);
      done += n;
    }
  }
}
