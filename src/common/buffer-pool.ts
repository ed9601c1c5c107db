import { onIdleRelease } from './idle-collector';

/** Buffers are kept in classes of 64 KiB steps: buffers of one request size share a class and waste under 64 KiB. */
const CLASS_BYTES = 64 * 1024;

export interface BufferPoolOptions {
  /** Buffers below this size come from Buffer.allocUnsafe: malloc's heap reuses freed small memory already. */
  readonly minPooled: number;
  /** Most bytes kept free for reuse. */
  readonly maxKept: number;
}

/**
 * Reusable memory for large, short-lived buffers: the payloads a replica
 * assembles from the socket, its write records, the scratch of multi-block
 * reads. Fresh memory of 128 KiB or more is a new mapping from the kernel, so
 * writing into it takes a page fault per 4 KiB (256 per MiB, tens of
 * microseconds each on a virtualized host), and as external memory it brings
 * V8's next full collection closer; reused buffers pay neither.
 *
 * Only views this pool handed out come back, each once: a view of a socket
 * chunk or a part of a lent buffer given by mistake is ignored, never pooled.
 * Kept buffers are dropped when the process turns idle (the idle collector's
 * release hook, src/common/idle-collector.ts), so an idle process holds none;
 * the next burst's first buffers pay the page faults again, once per burst.
 */
export class BufferPool {
  private readonly free = new Map<number, ArrayBuffer[]>();
  /** Views handed out and not yet given back. Weak: a view never given back (an abandoned request) is simply collected. */
  private readonly lent = new WeakSet<Buffer>();
  private kept = 0;
  private readonly stopReleasing: () => void;

  constructor(private readonly options: BufferPoolOptions) {
    this.stopReleasing = releaseWhenIdle(this);
  }

  /** Bytes kept for reuse. */
  get keptBytes(): number {
    return this.kept;
  }

  /** A buffer of exactly n bytes, not zeroed: the caller writes every byte it reads back. */
  take(n: number): Buffer {
    if (n < this.options.minPooled) return Buffer.allocUnsafe(n);
    const size = Math.ceil(n / CLASS_BYTES) * CLASS_BYTES;
    const reused = this.free.get(size)?.pop();
    if (reused) this.kept -= size;
    const view = reused ? Buffer.from(reused, 0, n) : Buffer.allocUnsafeSlow(size).subarray(0, n);
    this.lent.add(view);
    return view;
  }

  /** Takes back a view from take() once nothing refers to it any more; anything else is ignored. */
  give(view: Buffer): void {
    if (!this.lent.delete(view)) return;
    const size = view.buffer.byteLength;
    if (this.kept + size > this.options.maxKept) return;
    let list = this.free.get(size);
    if (!list) this.free.set(size, (list = []));
    list.push(view.buffer as ArrayBuffer);
    this.kept += size;
  }

  /** Drops every kept buffer; the next collection frees their memory. Lent buffers are unaffected. */
  release(): void {
    this.free.clear();
    this.kept = 0;
  }

  /** Drops the kept buffers and leaves the idle release: for pools with a shorter life than the process. */
  close(): void {
    this.release();
    this.stopReleasing();
  }
}

/**
 * The release hook holds the pool weakly: a pool that lives as long as its
 * owner (a store) has no close, so the hook must not keep a dropped owner's
 * pool alive, and it removes itself once the pool is gone.
 */
function releaseWhenIdle(pool: BufferPool): () => void {
  const ref = new WeakRef(pool);
  const remove = onIdleRelease(() => {
    const p = ref.deref();
    if (p) p.release();
    else remove();
  });
  return remove;
}
