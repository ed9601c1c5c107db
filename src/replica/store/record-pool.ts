import { onIdleRelease } from '../../common/idle-collector';

/**
 * Reusable memory for large write records (and for the scratch buffer of a
 * multi-block read, which is the same story read the other way). A 1 MiB write is encoded into a
 * fresh buffer of just over 1 MiB; fresh memory of that size comes from mmap,
 * so the copy into it takes a page fault per 4 KiB (256 per MiB, tens of
 * microseconds each on a virtualized host) before the data even reaches the
 * page cache. Buffers handed back once their record is in the file are reused
 * instead. Records under MIN_POOLED come from the ordinary allocator (its heap
 * reuses freed memory already); at most MAX_KEPT bytes wait for reuse.
 *
 * Kept buffers are given back when the process turns idle (the idle
 * collector's release hook, src/common/idle-collector.ts): an idle replica has
 * no use for 16 MiB of spare records, and the next burst's first writes pay the
 * page faults again, a few milliseconds once per burst.
 */
const MIN_POOLED = 128 * 1024;
const MAX_KEPT = 16 * 1024 * 1024;
const CLASS_BYTES = 64 * 1024;

/**
 * The release hook holds the pool weakly: a pool has no close (it lives as
 * long as its store), so the hook must not keep a dropped store's pool alive,
 * and it removes itself once the pool is gone.
 */
function releaseWhenIdle(pool: RecordPool): void {
  const ref = new WeakRef(pool);
  const remove = onIdleRelease(() => {
    const p = ref.deref();
    if (p) p.release();
    else remove();
  });
}

export class RecordPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  private kept = 0;

  /** `maxKept`: most bytes waiting for reuse. */
  constructor(private readonly maxKept = MAX_KEPT) {
    releaseWhenIdle(this);
  }

  /** Bytes waiting for reuse. */
  get keptBytes(): number {
    return this.kept;
  }

  /** Drops every kept buffer; the next collection frees their memory. Taken buffers are unaffected. */
  release(): void {
    this.free.clear();
    this.kept = 0;
  }

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
    if (b.length < MIN_POOLED || b.byteOffset !== 0 || size !== sizeClass(b.length) || this.kept + size > this.maxKept) return;
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
