interface Entry {
  readonly start: number;
  readonly end: number;
  /** Later commands waiting for this one; created only when one has to wait. */
  waiters: Array<() => void> | undefined;
}

/**
 * Serialises overlapping LBA ranges in arrival order. Every mutating command
 * holds its range while it runs, so COMPARE AND WRITE's read-compare-write is
 * atomic against other writes to the same blocks (SBC-3 §5.2); disjoint
 * commands run concurrently. Each waiter waits only for entries that arrived
 * before it, so the lock cannot deadlock. The number of entries is bounded by
 * the transport's command window.
 */
export class RangeLock {
  private readonly held = new Set<Entry>();

  async acquire(start: number, count: number): Promise<() => void> {
    const entry: Entry = { start, end: start + Math.max(count, 1), waiters: undefined };
    let prior: Array<Promise<void>> | undefined;
    for (const other of this.held) {
      if (other.start < entry.end && start < other.end) {
        const waiters = (other.waiters ??= []);
        (prior ??= []).push(new Promise<void>((resolve) => waiters.push(resolve)));
      }
    }
    this.held.add(entry);
    if (prior) await Promise.all(prior);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.held.delete(entry);
      for (const wake of entry.waiters ?? []) wake();
    };
  }

  /** Ranges held or waited for: for tests and diagnostics. */
  get size(): number {
    return this.held.size;
  }
}
