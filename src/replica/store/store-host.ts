import type { CompactionHost, Compactor } from './compactor';

/**
 * What the exporter and truncation need of the store: what compaction needs
 * plus the compactor itself. A structural type rather than LogStore itself, so
 * these modules do not import the class that imports them.
 */
export type StoreHost = CompactionHost & { readonly compactor: Compactor };
