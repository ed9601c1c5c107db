import type { Clock, TimerHandle } from '../../../../src/controller/engine/clock';

/** mulberry32: a small seeded generator, so a failing schedule replays from its seed. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  between(min: number, max: number): number {
    return min + this.int(max - min + 1);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

interface Event {
  readonly at: number;
  readonly order: number;
  readonly fn: () => void;
  cancelled: boolean;
}

/**
 * A virtual clock and event queue. Events run one at a time in (time, order)
 * order, and every promise continuation they cause settles before the next
 * event (a setImmediate turn drains the microtask queue), so a schedule is a
 * pure function of its seed.
 */
export class SimClock implements Clock {
  private time = 0;
  private order = 0;
  private heap: Event[] = [];

  now(): number {
    return this.time;
  }

  setTimer(ms: number, fn: () => void): TimerHandle {
    const event: Event = { at: this.time + Math.max(0, ms), order: this.order++, fn, cancelled: false };
    this.push(event);
    return { cancel: () => (event.cancelled = true) };
  }

  /** Runs the next live event; false when none is left. */
  async step(): Promise<boolean> {
    while (this.heap.length > 0) {
      const event = this.pop();
      if (event.cancelled) continue;
      this.time = Math.max(this.time, event.at);
      event.fn();
      await drain();
      return true;
    }
    return false;
  }

  /** Advances virtual time by `ms`, running every event due meanwhile. */
  async advance(ms: number): Promise<void> {
    const until = this.time + ms;
    await drain();
    while (this.heap.length > 0 && this.peek().at <= until) await this.step();
    this.time = Math.max(this.time, until);
  }

  /** Runs events until `promise` settles; throws if virtual `maxMs` pass first or nothing is left to run. */
  async run<T>(promise: Promise<T>, maxMs: number): Promise<T> {
    let settled = false;
    const watched = promise.finally(() => (settled = true));
    watched.catch(() => undefined);
    const limit = this.time + maxMs;
    await drain();
    while (!settled) {
      if (this.heap.length === 0 || this.peek().at > limit) throw new Error(`simulation: operation did not settle within ${maxMs} ms of virtual time`);
      await this.step();
    }
    return watched;
  }

  /** Runs events until `done()` holds; false if virtual `maxMs` pass first. */
  async runUntil(done: () => boolean, maxMs: number): Promise<boolean> {
    const limit = this.time + maxMs;
    await drain();
    while (!done()) {
      if (this.heap.length === 0 || this.peek().at > limit) return false;
      await this.step();
    }
    return true;
  }

  private less(a: Event, b: Event): boolean {
    return a.at < b.at || (a.at === b.at && a.order < b.order);
  }

  private peek(): Event {
    while (this.heap.length > 0 && this.heap[0].cancelled) this.pop();
    return this.heap[0] ?? { at: Infinity, order: 0, fn: () => undefined, cancelled: false };
  }

  private push(event: Event): void {
    const heap = this.heap;
    heap.push(event);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  private pop(): Event {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      while (true) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < heap.length && this.less(heap[l], heap[m])) m = l;
        if (r < heap.length && this.less(heap[r], heap[m])) m = r;
        if (m === i) break;
        [heap[i], heap[m]] = [heap[m], heap[i]];
        i = m;
      }
    }
    return top;
  }
}

/** Lets every queued promise continuation run. */
export function drain(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
