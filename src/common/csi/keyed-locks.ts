/**
 * Per-volume exclusion for CSI calls. The CSI spec (§"Concurrency") lets a
 * plugin reject a second in-flight call on the same volume with ABORTED, and the
 * CO retries with back-off; queueing instead would let a stuck call pile up
 * retries behind it. So this is a try-lock set, never a waiting lock.
 */
export class KeyedLocks {
  private readonly held = new Set<string>();

  /** Takes every key or none; returns the release function, or undefined when one is busy. */
  tryAcquire(keys: readonly string[]): (() => void) | undefined {
    const unique = [...new Set(keys.filter((k) => k !== ''))];
    if (unique.some((k) => this.held.has(k))) return undefined;
    for (const k of unique) this.held.add(k);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const k of unique) this.held.delete(k);
    };
  }

  isHeld(key: string): boolean {
    return this.held.has(key);
  }

  get size(): number {
    return this.held.size;
  }
}
