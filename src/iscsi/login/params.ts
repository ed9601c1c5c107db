/**
 * Operational parameters of a session and its connection after login
 * (RFC 7143 §13). Defaults are the RFC's; `TargetOffers` are what this target
 * proposes or accepts at most.
 */
export interface SessionParams {
  headerDigest: boolean;
  dataDigest: boolean;
  /** What the target may receive in one data segment (our declaration). */
  targetMaxRecvDataSegmentLength: number;
  /** What the target may send in one data segment (the initiator's declaration). */
  initiatorMaxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  initialR2T: boolean;
  immediateData: boolean;
  maxOutstandingR2T: number;
  maxConnections: number;
  errorRecoveryLevel: number;
  defaultTime2Wait: number;
  defaultTime2Retain: number;
  dataPDUInOrder: boolean;
  dataSequenceInOrder: boolean;
}

/** RFC 7143 §13 defaults, in force until negotiated otherwise. */
export function defaultParams(): SessionParams {
  return {
    headerDigest: false,
    dataDigest: false,
    targetMaxRecvDataSegmentLength: 8192,
    initiatorMaxRecvDataSegmentLength: 8192,
    maxBurstLength: 262144,
    firstBurstLength: 65536,
    initialR2T: true,
    immediateData: true,
    maxOutstandingR2T: 1,
    maxConnections: 1,
    errorRecoveryLevel: 0,
    defaultTime2Wait: 2,
    defaultTime2Retain: 20,
    dataPDUInOrder: true,
    dataSequenceInOrder: true,
  };
}

/** What this target offers; each negotiated value is the result function of this and the initiator's. */
export interface TargetOffers {
  maxRecvDataSegmentLength: number;
  maxBurstLength: number;
  firstBurstLength: number;
  maxOutstandingR2T: number;
  /** Whether we accept CRC32C digests. */
  digests: boolean;
}

export const DEFAULT_OFFERS: TargetOffers = {
  // 256 KiB segments keep Data-In PDUs few without holding much per connection.
  maxRecvDataSegmentLength: 262144,
  maxBurstLength: 1048576,
  firstBurstLength: 262144,
  maxOutstandingR2T: 8,
  digests: true,
};
