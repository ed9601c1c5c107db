import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReplicaMode } from './ack-policy';

type Op = 'read' | 'write' | 'unmap' | 'flush';

/** The label children of one op, resolved once: prom-client hashes a label object on every call otherwise. */
interface OpChildren {
  readonly latency: Histogram.Internal<'volume' | 'op'>;
  readonly ok: Counter.Internal;
  readonly error: Counter.Internal;
  readonly bytes: Counter.Internal;
}

// Latency on the monotonic clock, in seconds for the histogram.
const { performance } = globalThis;

/**
 * The engine's metrics on the process registry (STYLE.md rule 7). Several
 * volumes may share one registry, so each metric is created once and labelled
 * by volume.
 */
export class EngineMetrics {
  private readonly ops: Counter<'volume' | 'op' | 'result'>;
  private readonly bytes: Counter<'volume' | 'op'>;
  private readonly latency: Histogram<'volume' | 'op'>;
  private readonly replicas: Gauge<'volume' | 'mode'>;
  private readonly rebuildDone: Gauge<'volume' | 'replica'>;
  private readonly rebuildTotal: Gauge<'volume' | 'replica'>;
  private readonly dropped: Counter<'volume' | 'reason'>;
  private readonly children = new Map<Op, OpChildren>();

  constructor(
    registry: Registry,
    private readonly volume: string,
  ) {
    const get = <T>(name: string, make: () => T): T => (registry.getSingleMetric(name) as T | undefined) ?? make();
    this.ops = get('trireme_controller_ops_total', () => new Counter({ name: 'trireme_controller_ops_total', help: 'Block operations by result', labelNames: ['volume', 'op', 'result'], registers: [registry] }));
    this.bytes = get('trireme_controller_io_bytes', () => new Counter({ name: 'trireme_controller_io_bytes', help: 'Bytes read and written by initiators', labelNames: ['volume', 'op'], registers: [registry] }));
    this.latency = get('trireme_controller_op_seconds', () => new Histogram({ name: 'trireme_controller_op_seconds', help: 'Latency of block operations', labelNames: ['volume', 'op'], buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers: [registry] }));
    this.replicas = get('trireme_controller_replicas_total', () => new Gauge({ name: 'trireme_controller_replicas_total', help: 'Replicas per mode', labelNames: ['volume', 'mode'], registers: [registry] }));
    this.rebuildDone = get('trireme_controller_rebuild_done_bytes', () => new Gauge({ name: 'trireme_controller_rebuild_done_bytes', help: 'Bytes copied by the running rebuild', labelNames: ['volume', 'replica'], registers: [registry] }));
    this.rebuildTotal = get('trireme_controller_rebuild_total_bytes', () => new Gauge({ name: 'trireme_controller_rebuild_total_bytes', help: 'Estimated bytes the running rebuild copies', labelNames: ['volume', 'replica'], registers: [registry] }));
    this.dropped = get('trireme_controller_replica_drops_total', () => new Counter({ name: 'trireme_controller_replica_drops_total', help: 'Replicas dropped from the write set', labelNames: ['volume', 'reason'], registers: [registry] }));
  }

  /** Starts timing an operation; pass the result to end(). */
  start(): number {
    return performance.now();
  }

  /** Records one operation's outcome, timed from start(). */
  end(op: Op, started: number, ok: boolean, bytes: number): void {
    let c = this.children.get(op);
    if (c === undefined) {
      c = {
        latency: this.latency.labels(this.volume, op),
        ok: this.ops.labels(this.volume, op, 'ok'),
        error: this.ops.labels(this.volume, op, 'error'),
        bytes: this.bytes.labels(this.volume, op),
      };
      this.children.set(op, c);
    }
    c.latency.observe((performance.now() - started) / 1000);
    if (!ok) {
      c.error.inc();
      return;
    }
    c.ok.inc();
    if (bytes > 0) c.bytes.inc(bytes);
  }

  modes(modes: readonly ReplicaMode[]): void {
    for (const mode of ['RW', 'WO', 'ERR'] as const) this.replicas.set({ volume: this.volume, mode }, modes.filter((m) => m === mode).length);
  }

  rebuild(replica: string, done: number, total: number): void {
    this.rebuildDone.set({ volume: this.volume, replica }, done);
    this.rebuildTotal.set({ volume: this.volume, replica }, total);
  }

  drop(reason: string): void {
    this.dropped.inc({ volume: this.volume, reason });
  }
}
