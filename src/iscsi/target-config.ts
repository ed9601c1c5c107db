import type { BlockDevice } from './block-device';

/** CHAP credentials (RFC 7143 §12.1.3). */
export interface ChapCredentials {
  readonly user: string;
  /** 12 to 16 bytes is what RFC 7143 asks for; any non-empty secret is accepted. */
  readonly secret: string;
}

/** One iSCSI target served by the process: its name, LUNs and authentication. */
export interface TargetConfig {
  /** iqn.YYYY-MM.reverse.domain:name or eui.* (RFC 7143 §4.2.7). */
  readonly iqn: string;
  readonly alias?: string;
  readonly luns: ReadonlyArray<{ readonly lun: number; readonly device: BlockDevice }>;
  /** One-way CHAP: the initiator must prove it knows this secret. */
  readonly chap?: ChapCredentials;
  /** Mutual CHAP: the target proves itself with this secret when the initiator asks. */
  readonly mutualChap?: ChapCredentials;
}
