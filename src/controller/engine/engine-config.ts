import { InvalidArgumentError } from '../../common/errors';

export interface EngineTuning {
  /** An I/O outstanding this long drops its replica from the write set (ERR). */
  readonly opTimeoutMs: number;
  /** How often replicas in ERR are probed to start their rebuild. */
  readonly probeIntervalMs: number;
  /** Rebuild copy budget; 0 means unthrottled. */
  readonly rebuildBytesPerSecond: number;
  /** How long open() keeps trying to gather a quorum. */
  readonly openTimeoutMs: number;
}

export const DEFAULT_TUNING: EngineTuning = {
  opTimeoutMs: 4000,
  probeIntervalMs: 1000,
  rebuildBytesPerSecond: 128 * 1024 * 1024,
  openTimeoutMs: 30_000,
};

export const MAX_REPLICAS = 5;

export function resolveTuning(partial: Partial<EngineTuning> | undefined): EngineTuning {
  const tuning = { ...DEFAULT_TUNING, ...partial };
  for (const [key, value] of Object.entries(tuning)) {
    if (!Number.isFinite(value) || value < 0) throw new InvalidArgumentError(`engine option ${key} must be a non-negative number, got ${value}`);
  }
  if (tuning.opTimeoutMs === 0 || tuning.probeIntervalMs === 0) throw new InvalidArgumentError('opTimeoutMs and probeIntervalMs must be positive');
  return tuning;
}

export function checkReplicaCount(count: number): void {
  if (!Number.isInteger(count) || count < 1 || count > MAX_REPLICAS) {
    throw new InvalidArgumentError(`a volume has 1 to ${MAX_REPLICAS} replicas, got ${count}`);
  }
}
