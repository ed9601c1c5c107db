import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Bounds background I/O to a share of disk bandwidth: `rate` bytes per second
 * with a burst of one second's worth. Taking more than is available waits for
 * the deficit to refill (the debt is paid before the next take goes through).
 */
export class TokenBucket {
  private tokens: number;
  private last = performance.now();

  constructor(private readonly rate: number) {
    this.tokens = rate;
  }

  async take(bytes: number): Promise<void> {
    if (!Number.isFinite(this.rate) || this.rate <= 0) return;
    const now = performance.now();
    this.tokens = Math.min(this.rate, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
    this.tokens -= bytes;
    if (this.tokens < 0) await sleep((-this.tokens / this.rate) * 1000);
  }
}
