import type { BlockDevice } from '../block-device';
import { PersistentReservations } from './pr-state';
import { RangeLock } from './range-lock';
import { TaskSet } from './task-set';
import { lbaOutOfRange } from './sense';
import { UnitAttentions } from './unit-attention';

/**
 * Largest single READ/WRITE, in bytes; reported in the Block Limits VPD page
 * (SBC-3 §6.5.3). The transport bounds the bytes in flight per connection,
 * so a large limit costs memory only when an initiator uses it.
 */
export const MAX_TRANSFER_BYTES = 32 * 1024 * 1024;
export const OPTIMAL_TRANSFER_BYTES = 1024 * 1024;
/**
 * UNMAP and WRITE SAME deallocate or fill up to this many blocks per command:
 * 2^20, the most initiators consider sane (libiscsi checks for it).
 */
export const MAX_UNMAP_BLOCKS = 1024 * 1024;
export const MAX_UNMAP_DESCRIPTORS = 64;
export const MAX_WRITE_SAME_BLOCKS = 1024 * 1024;
/** COMPARE AND WRITE's NUMBER OF LOGICAL BLOCKS is one byte (SBC-3 §5.2). */
export const MAX_COMPARE_AND_WRITE_BLOCKS = 255;
/** Devices store in pages of at least 4 KiB: the physical block and unmap granularity. */
export const PHYSICAL_BLOCK_BYTES = 4096;

/** Block limits in logical blocks of one LU (Block Limits VPD page). */
export interface BlockLimits {
  readonly maxTransferBlocks: number;
  readonly optimalTransferBlocks: number;
  readonly maxUnmapBlocks: number;
  readonly maxUnmapDescriptors: number;
  readonly maxWriteSameBlocks: number;
  readonly maxCompareAndWriteBlocks: number;
  readonly granularityBlocks: number;
}

/** One logical unit: a BlockDevice plus the task-set state SPC-4 keeps per LU. */
export class LogicalUnit {
  readonly unitAttentions = new UnitAttentions();
  readonly rangeLock = new RangeLock();
  readonly reservations = new PersistentReservations();
  readonly tasks = new TaskSet();
  /** The nexus holding a RESERVE(6) reservation (SPC-2 §7.21), if any. */
  legacyHolder: string | undefined;
  /**
   * SWP of the Control mode page (SPC-4 §7.5.8): set, the LU refuses every
   * command that writes the medium. Volatile and shared by all I_T nexuses;
   * a reset returns it to its default, off (see Target.reset).
   */
  softwareWriteProtect = false;
  readonly limits: BlockLimits;

  constructor(
    readonly lun: number,
    readonly device: BlockDevice,
  ) {
    const bs = device.blockSize;
    this.limits = {
      maxTransferBlocks: MAX_TRANSFER_BYTES / bs,
      optimalTransferBlocks: OPTIMAL_TRANSFER_BYTES / bs,
      maxUnmapBlocks: MAX_UNMAP_BLOCKS,
      maxUnmapDescriptors: MAX_UNMAP_DESCRIPTORS,
      maxWriteSameBlocks: MAX_WRITE_SAME_BLOCKS,
      maxCompareAndWriteBlocks: MAX_COMPARE_AND_WRITE_BLOCKS,
      granularityBlocks: Math.max(1, PHYSICAL_BLOCK_BYTES / bs),
    };
  }

  get blockSize(): number {
    return this.device.blockSize;
  }

  /** Number of logical blocks; the capacity may change while the LU is served. */
  blocks(): number {
    return Math.floor(this.device.size() / this.device.blockSize);
  }

  /**
   * SBC-3 §4.5: an LBA past the last one, or a range running past the end,
   * is LOGICAL BLOCK ADDRESS OUT OF RANGE, also for a transfer length of zero.
   */
  checkRange(lba: number, count: number): void {
    const blocks = this.blocks();
    if (!(lba < blocks) || lba + count > blocks) throw lbaOutOfRange();
  }
}
