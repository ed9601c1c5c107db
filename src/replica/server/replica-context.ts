import type { Logger } from '../../common/logger';
import type { ReplicaStore } from '../store-types';
import type { ServerMetrics } from './server-metrics';

/**
 * What the data and control services of one replica share: the store, the
 * metrics, the logger, and the current epoch cached for the hot path (reads
 * and pings check it without asking the store for its full info). Every
 * control call that can move the epoch refreshes it.
 */
export class ReplicaContext {
  private cachedEpoch: number;

  constructor(
    readonly store: ReplicaStore,
    readonly metrics: ServerMetrics,
    readonly logger: Logger,
  ) {
    this.cachedEpoch = store.info().epoch;
  }

  get epoch(): number {
    return this.cachedEpoch;
  }

  refreshEpoch(): void {
    this.cachedEpoch = this.store.info().epoch;
  }
}
