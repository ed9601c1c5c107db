/**
 * Reusable memory for large write records. A 1 MiB write is encoded into a
 * fresh buffer of just over 1 MiB; fresh memory of that size comes from mmap,
 * so the copy into it takes a page fault per 4 KiB (256 per MiB, tens of
 * microseconds each on a virtualized host) before the data even reaches the
 * page cache. Buffers handed back once their record is in the file are reused
 * instead. Records under MIN_POOLED come from the ordinary allocator (its heap
 * reuses freed memory already); at most MAX_KEPT bytes wait for reuse.
 */
const MIN_POOLED = 128 * 1024;
const MAX_KEPT = 16 * 1024 * 1024;
const CLASS_BYTES = 64 * 1024;

export class RecordPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private kept = 0;

  /** A buffer of exactly n bytes (contents undefined). */
  take(n: number): Buffer {
    if (n < MIN_POOLED) return Buffer.allocUnsafe(n);
    const size = sizeClass(n);
    const ab = this.free.get(size)?.pop();
    if (!ab) return Buffer.allocUnsafeSlow(size).subarray(0, n);
    this.kept -= size;
    return Buffer.from(ab, 0, n);
  }

  /** Returns a buffer from take() once nothing refers to it any more (its record is written or abandoned). */
  give(b: Buffer): void {
    const size = b.buffer.byteLength;
    if (b.length < MIN_POOLED || b.byteOffset !== 0 || size !== sizeClass(b.length) || this.kept + size > MAX_KEPT) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(b.buffer as ArrayBuffer);
    this.kept += size;
  }
}

/** Classes of 64 KiB steps: records of one write size share one class and waste under 64 KiB. */
function sizeClass(n: number): number {
  return Math.ceil(n / CLASS_BYTES) * CLASS_BYTES;
}
