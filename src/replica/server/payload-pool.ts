/** Payloads below this size are left to Buffer.allocUnsafe: malloc serves them from its heap cheaply. */
export const MIN_POOLED = 64 * 1024;

/**
 * Reuses the buffers large write payloads are assembled in. A fresh 1 MiB
 * buffer is a new mapping from the kernel (256 page faults, each page zeroed)
 * and 1 MiB of external memory that brings V8's next full collection closer;
 * with three replicas each assembling every write, that was a large share of
 * a replica's CPU time on 1 MiB writes. Buffers come in power-of-two classes
 * and a caller gets a view of exactly the length it asked for.
 *
 * Bounded (STYLE.md rule 5): at most `maxFreeBytes` are kept free, and a pool
 * left untouched for a whole trim interval drops them all, so an idle replica
 * holds none. A buffer is only taken back from give() if this pool handed it
 * out: a payload that was a view of a socket chunk is simply dropped.
 */
export class PayloadPool {
  private readonly free = new Map<number, Buffer[]>();
  private readonly lent = new Map<Buffer, Buffer>();
  private freeBytes = 0;
  private used = false;
  private readonly timer: NodeJS.Timeout;

  constructor(
    private readonly maxFreeBytes: number,
    trimIntervalMs: number,
  ) {
    this.timer = setInterval(() => this.trim(), trimIntervalMs);
    this.timer.unref();
  }

  /** Bytes held free for reuse. */
  get heldBytes(): number {
    return this.freeBytes;
  }

  /** A buffer of exactly `length` bytes, not zeroed: the caller writes every byte. */
  take(length: number): Buffer {
    if (length < MIN_POOLED) return Buffer.allocUnsafe(length);
    this.used = true;
    const size = 2 ** Math.ceil(Math.log2(length));
    let whole = this.free.get(size)?.pop();
    if (whole === undefined) whole = Buffer.allocUnsafeSlow(size);
    else this.freeBytes -= size;
    const view = whole.subarray(0, length);
    this.lent.set(view, whole);
    return view;
  }

  /** Takes back a buffer from take() once nothing refers to it any more; anything else is ignored. */
  give(view: Buffer): void {
    const whole = this.lent.get(view);
    if (whole === undefined) return;
    this.lent.delete(view);
    if (this.freeBytes + whole.length > this.maxFreeBytes) return;
    let list = this.free.get(whole.length);
    if (list === undefined) {
      list = [];
      this.free.set(whole.length, list);
    }
    list.push(whole);
    this.freeBytes += whole.length;
  }

  /** Drops every free buffer (and stops the trim timer). */
  close(): void {
    clearInterval(this.timer);
    this.free.clear();
    this.freeBytes = 0;
  }

  private trim(): void {
    if (!this.used) {
      this.free.clear();
      this.freeBytes = 0;
    }
    this.used = false;
  }
}
