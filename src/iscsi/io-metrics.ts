import type { Counter, Registry } from 'prom-client';

/**
 * Metrics on the per-command path, at the cost of a field update. prom-client
 * builds a closure, validates and hashes the labels and looks buckets up by
 * their string form on every inc() and observe(), even through a labelled
 * child: several microseconds per command across the transport and SCSI
 * metrics, a sizeable share of a 4 KiB I/O. Here counts accumulate in plain
 * fields and reach prom-client when the registry is read (its `collect`
 * hook), and latency histograms are a small metric of their own that the
 * registry formats like prom-client's. Names, labels and values seen by a
 * scrape are unchanged.
 */

/** One labelled series of a counter, bumped on the hot path and added to the counter on scrape. */
export class CounterCell {
  private pending = 0;

  constructor(
    private readonly counter: Counter<string>,
    private readonly labels: Record<string, string>,
  ) {}

  inc(amount = 1): void {
    this.pending += amount;
  }

  flush(): void {
    if (this.pending === 0) return;
    this.counter.inc(this.labels, this.pending);
    this.pending = 0;
  }
}

const cellsOf = new WeakMap<object, CounterCell[]>();

/**
 * The `collect` hook of a counter fed by cells: prom-client calls it (with the
 * counter as `this`) before it reads the values.
 */
export function flushCells(this: Counter<string>): void {
  for (const cell of cellsOf.get(this) ?? []) cell.flush();
}

/** A cell of `counter` (created with `collect: flushCells`). Cells are kept for the counter's lifetime: make them once per label set. */
export function counterCell(counter: Counter<string>, labels: Record<string, string>): CounterCell {
  const cell = new CounterCell(counter, labels);
  const cells = cellsOf.get(counter);
  if (cells) cells.push(cell);
  else cellsOf.set(counter, [cell]);
  return cell;
}

interface Series {
  readonly labels: Record<string, string>;
  /** Observations per bucket (not cumulative); the last slot counts values above every bound. */
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** One labelled series of a FastHistogram. */
export interface HistogramChild {
  observe(value: number): void;
}

/**
 * A histogram with prom-client's exposition (name_bucket with `le`, name_sum,
 * name_count) and an observe() that is a bucket scan and three additions.
 * It registers itself in the registry like any prom-client metric.
 */
export class FastHistogram {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly series = new Map<string, Series>();

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelName: string,
    private readonly buckets: readonly number[],
    registry?: Registry,
  ) {
    registry?.registerMetric(this as never);
  }

  /** The series for one label value; callers keep it (it is what makes observe() cheap). */
  child(value: string): HistogramChild {
    let series = this.series.get(value);
    if (!series) {
      series = { labels: { [this.labelName]: value }, counts: new Float64Array(this.buckets.length + 1), sum: 0, count: 0 };
      this.series.set(value, series);
    }
    const s = series;
    const bounds = this.buckets;
    return {
      observe(v: number): void {
        let i = 0;
        while (i < bounds.length && v > bounds[i]) i++;
        s.counts[i]++;
        s.sum += v;
        s.count++;
      },
    };
  }

  /** prom-client's metric read (Registry.metrics() and getSingleMetric().get()). */
  async get(): Promise<{ name: string; help: string; type: string; aggregator: string; values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> }> {
    const values: Array<{ labels: Record<string, string | number>; value: number; metricName: string }> = [];
    for (const s of this.series.values()) {
      let cumulative = 0;
      this.buckets.forEach((le, i) => {
        cumulative += s.counts[i];
        values.push({ labels: { le, ...s.labels }, value: cumulative, metricName: `${this.name}_bucket` });
      });
      values.push({ labels: { le: '+Inf', ...s.labels }, value: s.count, metricName: `${this.name}_bucket` });
      values.push({ labels: { ...s.labels }, value: s.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...s.labels }, value: s.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const s of this.series.values()) {
      s.counts.fill(0);
      s.sum = 0;
      s.count = 0;
    }
  }
}
