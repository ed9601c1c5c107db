/**
 * The seam between the iSCSI target and whatever stores the data (DESIGN.md,
 * "Module boundaries"). The target serves any BlockDevice; the volume engine in
 * src/controller is one, the memory and file devices beside this file are others.
 *
 * Offsets and lengths are in bytes and always multiples of `blockSize`; the
 * target checks ranges against `size()` before calling.
 */
export interface BlockDevice {
  /** Logical block size in bytes: 512 or 4096. Fixed for the device's lifetime. */
  readonly blockSize: number;
  /**
   * A stable identifier, unique per volume, that survives restarts; the target
   * derives its VPD unit serial number and NAA identifier from it.
   */
  readonly id: string;
  /** Current capacity in bytes. */
  size(): number;
  /** Reads `length` bytes; never-written ranges read as zeros. */
  read(offset: number, length: number): Promise<Buffer>;
  /**
   * Writes `data`. Resolves once the write is where the device's durability
   * contract puts an acknowledged write (a volatile cache is allowed, WCE=1);
   * with `fua` it resolves only once the data is on stable storage.
   */
  write(offset: number, data: Buffer, options?: { fua?: boolean }): Promise<void>;
  /** Makes every write acknowledged so far stable (SYNCHRONIZE CACHE). */
  flush(): Promise<void>;
  /** Deallocates a range; it then reads as zeros (LBPRZ=1). */
  unmap(offset: number, length: number): Promise<void>;
  /**
   * Registers a listener for capacity changes (the target raises a CAPACITY
   * DATA HAS CHANGED unit attention). Returns a function that unregisters it.
   */
  onResize(listener: (newSize: number) => void): () => void;
  close(): Promise<void>;
}

/**
 * Failure kinds a device reports, each mapped to one SCSI sense by the target.
 * A device throws BlockDeviceError; anything else becomes a hardware error.
 */
export type BlockDeviceErrorKind =
  /** Too few healthy replicas to accept writes (invariant 6); retryable. */
  | 'unavailable'
  /** Out of space on the backing store. */
  | 'no-space'
  /** The stored data failed a check (CRC) and cannot be returned. */
  | 'medium'
  /** Any other I/O failure. */
  | 'io';

export class BlockDeviceError extends Error {
  readonly code: string;
  readonly kind: BlockDeviceErrorKind;

  constructor(kind: BlockDeviceErrorKind, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'BlockDeviceError';
    this.kind = kind;
    this.code = `ERR_DEVICE_${kind.toUpperCase().replace('-', '_')}`;
  }
}
