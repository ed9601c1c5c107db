import { outOfRange, type CapacityRange } from '../../common/csi';

/**
 * Volume sizes are whole MiB. Rounding the requested size up to 1 MiB keeps every
 * volume a multiple of any block size the target exposes (512 B to 64 KiB) and of
 * the 1 MiB alignment partitioning tools and filesystems use, while wasting at
 * most 1 MiB; Kubernetes sizes (Mi, Gi) are already multiples of it.
 */
export const SIZE_GRANULARITY = 1024 * 1024;
/** The size when the CO gives no capacity range (CSI lets the plugin choose). */
export const DEFAULT_VOLUME_BYTES = 1024 * 1024 * 1024;

const roundUp = (n: number): number => Math.ceil(n / SIZE_GRANULARITY) * SIZE_GRANULARITY;
const roundDown = (n: number): number => Math.floor(n / SIZE_GRANULARITY) * SIZE_GRANULARITY;

/**
 * The size to create for a capacity range (CSI CreateVolume "capacity_range"):
 * at least `required_bytes` (rounded up), at most `limit_bytes`, and at least
 * `minimumBytes` (a clone's source size). Without a range: the default size,
 * capped by the limit. OUT_OF_RANGE when no whole-MiB size fits.
 */
export function sizeForRange(range: CapacityRange | null | undefined, minimumBytes = 0): number {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  if (required < 0 || limit < 0) throw outOfRange('capacity_range: bytes cannot be negative');
  if (limit > 0 && required > limit) throw outOfRange(`capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`);
  let size = required > 0 ? roundUp(required) : limit > 0 ? Math.min(DEFAULT_VOLUME_BYTES, roundDown(limit)) : DEFAULT_VOLUME_BYTES;
  size = Math.max(size, roundUp(minimumBytes));
  if (size === 0) throw outOfRange(`capacity_range: limit_bytes ${limit} is below the ${SIZE_GRANULARITY}-byte granularity`);
  if (limit > 0 && size > limit) {
    throw outOfRange(`capacity_range: ${size} bytes (whole MiB${minimumBytes > 0 ? `, at least the source's ${minimumBytes}` : ''}) exceeds limit_bytes ${limit}`);
  }
  return size;
}

/** Whether an existing size satisfies a capacity range (CreateVolume idempotency). */
export function sizeSatisfies(sizeBytes: number, range: CapacityRange | null | undefined): boolean {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  return sizeBytes >= required && (limit === 0 || sizeBytes <= limit);
}
