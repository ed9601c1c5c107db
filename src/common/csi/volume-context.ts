/**
 * Keys of the volume context the controller service publishes and the node
 * service stages from: one definition, so the two sides cannot drift apart.
 */
export const VOLUME_CONTEXT_KEYS = {
  /** `HOST:PORT` of the volume's iSCSI portal. */
  portal: 'portal',
  /** The volume's target name. */
  iqn: 'iqn',
  lun: 'lun',
  /** The StorageClass fsType, used when the claim names none. */
  fsType: 'fsType',
  replicaCount: 'replicaCount',
} as const;

/** Node-stage secret keys carrying CHAP credentials (RFC 7143 §12.1.3). */
export const CHAP_SECRET_KEYS = {
  user: 'chapUser',
  secret: 'chapSecret',
  mutualUser: 'chapMutualUser',
  mutualSecret: 'chapMutualSecret',
} as const;
