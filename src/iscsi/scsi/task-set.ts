import type { TaskAttribute } from './types';

function startNow<T>(work: () => Promise<T> | T): Promise<T> {
  try {
    return Promise.resolve(work());
  } catch (err) {
    return Promise.reject(err);
  }
}

/**
 * Task attributes of one LU's task set (SAM-5 §8.6, RFC 7143 §11.3.1 ATTR).
 * SIMPLE (and untagged, ACA) tasks run concurrently: the control mode page
 * reports unrestricted reordering. An ORDERED task starts only after every
 * task that entered before it has ended, and tasks that enter after it wait
 * for it. HEAD OF QUEUE tasks start at once.
 */
export class TaskSet {
  private readonly running = new Set<Promise<unknown>>();
  /** The most recent ORDERED task, which later tasks wait for. */
  private barrier: Promise<unknown> | undefined;

  run<T>(attribute: TaskAttribute, work: () => Promise<T> | T): Promise<T> {
    let started: Promise<T>;
    if (attribute === 'head-of-queue') {
      started = Promise.resolve().then(work);
    } else if (attribute === 'ordered') {
      const before = [...this.running];
      if (this.barrier) before.push(this.barrier);
      started = Promise.allSettled(before).then(work);
      this.barrier = started;
    } else if (this.barrier) {
      started = this.barrier.then(work, work);
    } else {
      // Nothing to wait for: start now rather than a microtask later (this is every plain READ and WRITE).
      started = startNow(work);
    }
    this.running.add(started);
    const forget = () => {
      this.running.delete(started);
      if (this.barrier === started) this.barrier = undefined;
    };
    started.then(forget, forget);
    return started;
  }

  /** Tasks entered and not yet ended: for tests and diagnostics. */
  get size(): number {
    return this.running.size;
  }
}
