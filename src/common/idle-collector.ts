import { Counter, type Registry } from 'prom-client';
import type { Logger } from './logger';

export interface IdleCollectorOptions {
  readonly logger: Logger;
  readonly registry: Registry;
  /** Name of the collections counter, `trireme_<area>_idle_collections_total` of the process's role. */
  readonly metricName: string;
  /** Role named in the counter's help text ("replica", "controller"). */
  readonly role: string;
  /** Length of one observation window. */
  readonly windowMs?: number;
  /** A window in which the process used less CPU than this share of one core counts as idle. */
  readonly idleShare?: number;
  /** The full collection to run; default: the `gc` global that `node --expose-gc` installs. */
  readonly gc?: () => void;
}

const DEFAULT_WINDOW_MS = 2_000;
const DEFAULT_IDLE_SHARE = 0.02;

/**
 * Memory kept for reuse (buffer pools) that an idle process should give back.
 * A collection is process-wide, so the pools register here rather than being
 * handed to the collector: they live deep inside modules (a store's record
 * pool) that know nothing of the process around them. A hook drops the
 * pool's references; the collection that follows frees the memory.
 */
const releaseHooks = new Set<() => void>();

/**
 * Registers `hook` to run before each idle collection; returns its removal.
 * A pool that may be dropped without a close should register a hook that
 * holds it through a WeakRef and removes itself once the pool is gone.
 */
export function onIdleRelease(hook: () => void): () => void {
  releaseHooks.add(hook);
  return () => releaseHooks.delete(hook);
}

/** Runs every release hook now; one that throws does not keep the others from running. */
export function releaseIdleMemory(logger?: Logger): void {
  for (const hook of [...releaseHooks]) {
    try {
      hook();
    } catch (err) {
      logger?.warn({ err }, 'idle release hook failed');
    }
  }
}

/**
 * Runs one full garbage collection when the process turns idle after work.
 *
 * Write payloads, socket reads and iSCSI data buffers live in off-heap
 * buffers that only a collection frees. After a burst V8 has no reason to
 * collect again (an idle process allocates nothing), so the burst's dead
 * buffers, often 10 MiB or more, stay resident for as long as the process
 * stays idle. One collection at the first idle window frees them, after the
 * release hooks have dropped the pools' spare buffers; with the malloc
 * settings the orchestrators give the children (volume-processes.ts) large
 * buffers go straight back to the system.
 *
 * Idleness is the process's own CPU time (process.cpuUsage) over a window, so
 * the data path carries no bookkeeping for it. Windows are short (2 s) so the
 * collection comes soon after a burst ends, before a replica's background
 * work (compaction every 10 s, checkpoints) wakes it again. The collection costs about as
 * much as one major GC of a ~12 MiB heap (milliseconds) once per idle period;
 * it never runs twice without work in between. Without `node --expose-gc`
 * (a process started by hand) there is nothing to call and the collector
 * stays off; the pools then keep their buffers, as collecting them would not
 * free anything before the next GC anyway.
 */
export class IdleCollector {
  private readonly timer: NodeJS.Timeout | undefined;
  private readonly collections: Counter;
  private last = process.cpuUsage();
  private workSinceCollection = false;
  private settling = false;

  constructor(options: IdleCollectorOptions) {
    this.collections = new Counter({ name: options.metricName, help: `Full garbage collections run when the ${options.role} turned idle`, registers: [options.registry] });
    const gc = options.gc ?? (globalThis as { gc?: () => void }).gc;
    if (typeof gc !== 'function') {
      options.logger.debug('no gc() exposed (node --expose-gc): idle collections off');
      return;
    }
    const windowMs = options.windowMs ?? DEFAULT_WINDOW_MS;
    const idleMicros = windowMs * 1000 * (options.idleShare ?? DEFAULT_IDLE_SHARE);
    this.timer = setInterval(() => this.check(gc, idleMicros, options.logger), windowMs);
    this.timer.unref();
  }

  private check(gc: () => void, idleMicros: number, logger: Logger): void {
    const used = process.cpuUsage(this.last);
    this.last = process.cpuUsage();
    if (this.settling) {
      // The window after a collection carries its background sweeping (freeing the buffers): not work.
      this.settling = false;
      return;
    }
    if (used.user + used.system >= idleMicros) {
      this.workSinceCollection = true;
      return;
    }
    if (!this.workSinceCollection) return;
    this.workSinceCollection = false;
    const before = process.memoryUsage();
    releaseIdleMemory(logger);
    gc();
    const after = process.memoryUsage();
    this.collections.inc();
    logger.debug({ heapUsedBefore: before.heapUsed, heapUsedAfter: after.heapUsed, arrayBuffersBefore: before.arrayBuffers, arrayBuffersAfter: after.arrayBuffers }, 'idle collection');
    // The collection's own CPU time must not count as work in the next window.
    this.last = process.cpuUsage();
    this.settling = true;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
