/**
 * Serialises overlapping LBA ranges in arrival order. Every mutating command
 * holds its range while it runs, so COMPARE AND WRITE's read-compare-write is
 * atomic against other writes to the same blocks (SBC-3 §5.2); disjoint
 * commands run concurrently. Each waiter waits only for entries that arrived
 * before it, so the lock cannot deadlock. The number of entries is bounded by
 * the transport's command window.
 */
export class RangeLock {
  private readonly held = new Set<{ start: number; end: number; done: Promise<void> }>();

  async acquire(start: number, count: number): Promise<() => void> {
    const end = start + Math.max(count, 1);
    const prior = [...this.held].filter((entry) => entry.start < end && start < entry.end).map((entry) => entry.done);
    let release!: () => void;
    const done = new Promise<void>((resolve) => {
      release = resolve;
    });
    const entry = { start, end, done };
    this.held.add(entry);
    await Promise.all(prior);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(entry);
      release();
    };
  }

  /** Ranges held or waited for: for tests and diagnostics. */
  get size(): number {
    return this.held.size;
  }
}
