/**
 * The replica data-path protocol: one fixed 52-byte header per frame, then an
 * optional payload. Requests and responses share the header layout; a response
 * echoes the request id and opcode and sets FLAG_RESPONSE. All integers are
 * big-endian. Epochs, seqs and offsets are 64-bit on the wire but must be safe
 * integers (< 2^53) to be accepted.
 *
 *   off size field
 *     0  2   magic          0x5452 ('TR')
 *     2  1   version        1
 *     3  1   opcode         Opcode
 *     4  2   flags          FLAG_*
 *     6  2   status         Status (0 in requests)
 *     8  4   requestId      chosen by the client, echoed in the response
 *    12  8   epoch          request: the sender's epoch (fencing, DESIGN.md invariant 3)
 *                           response: the replica's current epoch
 *    20  8   seq            request: the record's seq; response to hello/ping: last seq
 *    28  8   offset         bytes; response to hello/ping: durable seq
 *    36  4   length         bytes to read/unmap; response to hello/ping: 0
 *    40  4   payloadLength  bytes following the header
 *    44  4   payloadCrc     CRC32C of the payload (0 when there is none)
 *    48  4   headerCrc      CRC32C of bytes 0..47
 *
 * Read: an optional payload names a snapshot to read instead of the head.
 * The first byte of a connection tells it from HTTP/2 ('P' of the preface,
 * RFC 9113 section 3.4): a replica serves its gRPC control service on the same
 * port by handing such connections over.
 *
 * Status is an enum value, never only a string: an error response may carry a
 * UTF-8 message as payload for logs, but callers branch on the status.
 */
export const MAGIC = 0x5452;
export const VERSION = 1;
export const HEADER_SIZE = 52;
export const DEFAULT_DATA_PORT = 9700;
/** Largest payload a peer accepts unless configured otherwise: the biggest write the controller sends. */
export const DEFAULT_MAX_PAYLOAD = 8 * 1024 * 1024;

export const Opcode = {
  /** Handshake: payload is the expected volume id (UTF-8); response payload is ReplicaHello JSON. */
  Hello: 0x01,
  Ping: 0x02,
  Write: 0x10,
  Read: 0x11,
  Unmap: 0x12,
  Flush: 0x13,
} as const;
export type OpcodeValue = (typeof Opcode)[keyof typeof Opcode];

export const OPCODE_NAMES: Readonly<Record<number, string>> = {
  [Opcode.Hello]: 'hello',
  [Opcode.Ping]: 'ping',
  [Opcode.Write]: 'write',
  [Opcode.Read]: 'read',
  [Opcode.Unmap]: 'unmap',
  [Opcode.Flush]: 'flush',
};

export const FLAG_FUA = 0x0001;
export const FLAG_RESPONSE = 0x8000;
const KNOWN_FLAGS = FLAG_FUA | FLAG_RESPONSE;

export const Status = {
  Ok: 0,
  StaleEpoch: 1,
  OutOfRange: 2,
  Misaligned: 3,
  NoSpace: 4,
  Corrupt: 5,
  NotReady: 6,
  VolumeMismatch: 7,
  BadRequest: 8,
  NotFound: 9,
  Busy: 10,
  Closed: 11,
  ChecksumMismatch: 12,
  Internal: 13,
} as const;
export type StatusValue = (typeof Status)[keyof typeof Status];

/** Stable error codes for each non-ok status; the store's codes where they exist (store-types.ts). */
export const STATUS_CODES: Readonly<Record<number, string>> = {
  [Status.StaleEpoch]: 'ERR_STALE_EPOCH',
  [Status.OutOfRange]: 'ERR_OUT_OF_RANGE',
  [Status.Misaligned]: 'ERR_MISALIGNED',
  [Status.NoSpace]: 'ERR_NO_SPACE',
  [Status.Corrupt]: 'ERR_CORRUPT',
  [Status.NotReady]: 'ERR_NOT_READY',
  [Status.VolumeMismatch]: 'ERR_VOLUME_MISMATCH',
  [Status.BadRequest]: 'ERR_BAD_REQUEST',
  [Status.NotFound]: 'ERR_NOT_FOUND',
  [Status.Busy]: 'ERR_BUSY',
  [Status.Closed]: 'ERR_CLOSED',
  [Status.ChecksumMismatch]: 'ERR_CHECKSUM_MISMATCH',
  [Status.Internal]: 'ERR_INTERNAL',
};

export function isKnownOpcode(op: number): op is OpcodeValue {
  return OPCODE_NAMES[op] !== undefined;
}

export function isKnownStatus(status: number): status is StatusValue {
  return status === Status.Ok || STATUS_CODES[status] !== undefined;
}

export function hasOnlyKnownFlags(flags: number): boolean {
  return (flags & ~KNOWN_FLAGS) === 0;
}

export interface FrameHeader {
  readonly opcode: OpcodeValue;
  readonly flags: number;
  readonly status: StatusValue;
  readonly requestId: number;
  readonly epoch: number;
  readonly seq: number;
  readonly offset: number;
  readonly length: number;
  readonly payloadLength: number;
  readonly payloadCrc: number;
}

/** A decoded frame. The payload is owned by the receiver: it is never a view into a reused buffer. */
export interface Frame extends FrameHeader {
  readonly payload: Buffer;
}

/** What a replica tells a client in its hello response. */
export interface ReplicaHello {
  readonly replicaId: string;
  readonly volumeId: string;
  readonly size: number;
  readonly epoch: number;
  readonly lastSeq: number;
  readonly durableSeq: number;
  readonly state: 'ok' | 'error';
  readonly maxPayload: number;
}
