import { Registry, collectDefaultMetrics } from 'prom-client';

/**
 * One prom-client registry per process, made in the entry point and passed to
 * every module that records metrics (STYLE.md rule 7). Names are
 * `trireme_<area>_<what>_{total|seconds|bytes}`.
 */
export function createRegistry(options: { defaultMetrics?: boolean; labels?: Record<string, string> } = {}): Registry {
  const registry = new Registry();
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'trireme_process_' });
  return registry;
}

export type { Registry };
