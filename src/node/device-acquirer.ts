/** Where a volume is served: what the controller put in the volume context. */
export interface VolumeTarget {
  /** `HOST:PORT` of the iSCSI portal. */
  readonly portal: string;
  readonly iqn: string;
  readonly lun: number;
}

/** CHAP credentials from the node-stage secrets (RFC 7143 §12.1.3). */
export interface ChapSecrets {
  readonly user: string;
  readonly secret: string;
  /** Mutual CHAP: the target proves itself with these. */
  readonly mutualUser?: string;
  readonly mutualSecret?: string;
}

/**
 * Makes a volume's block device appear on this host and go away again. The
 * production implementation logs in with iscsiadm; everything after the device
 * exists (waiting for it, filesystems, mounts) is the node service's own and runs
 * the same whatever acquired the device.
 */
export interface DeviceAcquirer {
  /** Idempotent: a second attach of an attached target changes nothing. Returns the device link to wait for. */
  attach(target: VolumeTarget, chap?: ChapSecrets): Promise<string>;
  /** The device link attach returns, computed without touching the host (for unstage after a crash). */
  devicePath(target: VolumeTarget): string;
  /** Idempotent: detaching a target that is not attached succeeds. */
  detach(target: VolumeTarget): Promise<void>;
  /** Makes the host see a new capacity after the volume was grown. */
  rescan(target: VolumeTarget): Promise<void>;
  /** Whether the tools it relies on answer. */
  ready(): Promise<boolean>;
}
