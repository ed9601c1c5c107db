import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Live numbers a store reports when metrics are scraped. */
export interface StoreGauges {
  segments(): number;
  liveBytes(): number;
  deadBytes(): number;
  indexBytes(): number;
}

export interface StoreMetrics {
  appends: Counter<'replica' | 'type'>;
  bytes: Counter<'replica'>;
  fsync: Histogram<'replica'>;
  compactionBytes: Counter<'replica'>;
  /** Stops reporting this store's gauges (close). */
  detach(): void;
  replica: string;
}

const sources = new WeakMap<Registry, Map<string, StoreGauges>>();

function once<T>(registry: Registry, name: string, make: () => T): T {
  return (registry.getSingleMetric(name) as T | undefined) ?? make();
}

function gauge(registry: Registry, name: string, help: string, pick: (g: StoreGauges) => number): void {
  once(registry, name, () =>
    new Gauge({
      name,
      help,
      labelNames: ['replica'],
      registers: [registry],
      collect() {
        this.reset();
        for (const [replica, g] of sources.get(registry) ?? []) this.set({ replica }, pick(g));
      },
    }),
  );
}

/**
 * trireme_replica_store_* metrics on the process registry (STYLE.md rule 7).
 * Several stores may share one registry: each reports under its replica label.
 */
export function storeMetrics(registry: Registry, replica: string, gauges: StoreGauges): StoreMetrics {
  const labelNames = ['replica'] as const;
  const appends = once(registry, 'trireme_replica_store_appends_total', () =>
    new Counter({ name: 'trireme_replica_store_appends_total', help: 'Records appended to the log', labelNames: ['replica', 'type'], registers: [registry] }),
  );
  const bytes = once(registry, 'trireme_replica_store_appended_bytes_total', () =>
    new Counter({ name: 'trireme_replica_store_appended_bytes_total', help: 'Bytes appended to the log', labelNames, registers: [registry] }),
  );
  const fsync = once(registry, 'trireme_replica_store_fsync_seconds', () =>
    new Histogram({
      name: 'trireme_replica_store_fsync_seconds',
      help: 'fdatasync latency of the log',
      labelNames,
      buckets: [0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 1],
      registers: [registry],
    }),
  );
  const compactionBytes = once(registry, 'trireme_replica_store_compaction_bytes_total', () =>
    new Counter({ name: 'trireme_replica_store_compaction_bytes_total', help: 'Bytes copied forward by compaction', labelNames, registers: [registry] }),
  );
  gauge(registry, 'trireme_replica_store_segments_total', 'Segment files of the log', (g) => g.segments());
  gauge(registry, 'trireme_replica_store_live_bytes', 'Log bytes still needed by the head or a snapshot', (g) => g.liveBytes());
  gauge(registry, 'trireme_replica_store_dead_bytes', 'Log bytes compaction could give back', (g) => g.deadBytes());
  gauge(registry, 'trireme_replica_store_index_bytes', 'Memory of the block index', (g) => g.indexBytes());
  let map = sources.get(registry);
  if (!map) sources.set(registry, (map = new Map()));
  map.set(replica, gauges);
  return {
    appends: appends as Counter<'replica' | 'type'>,
    bytes: bytes as Counter<'replica'>,
    fsync: fsync as Histogram<'replica'>,
    compactionBytes: compactionBytes as Counter<'replica'>,
    replica,
    detach: () => {
      if (map.get(replica) === gauges) map.delete(replica);
    },
  };
}
