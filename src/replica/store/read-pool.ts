/**
 * Memory for 4k reads, carved from shared slabs. A read lands in the slab and
 * the caller gets a view of its data bytes: no ArrayBuffer per read (Node pools
 * only buffers under 4 KiB, so Buffer.allocUnsafe(4100) is a fresh allocation
 * each time) and no copy. A region is handed out once and never reused: a
 * returned buffer owns its bytes for as long as it lives (STYLE.md rule 3), and
 * a slab is freed by the collector once no buffer views it. Slabs are small so
 * one long-lived buffer pins little memory, as with Node's own pool.
 */
const SLAB_BYTES = 64 * 1024;

export class ReadPool {
  /** The slab of the last reservation (read it after take(): take may start a new one). */
  slab = Buffer.allocUnsafeSlow(0);
  private used = 0;

  /**
   * Reserves n bytes and returns their offset in `slab`, placed so that byte
   * `skew` of the reservation is 8-byte aligned (the data after a block's CRC,
   * so callers' typed-array views of it stay aligned as with Node's pool).
   */
  take(n: number, skew = 0): number {
    let at = ((this.used + skew + 7) & ~7) - skew;
    if (at + n > this.slab.length) {
      this.slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, n + 8));
      at = ((skew + 7) & ~7) - skew;
    }
    this.used = at + n;
    return at;
  }
}
