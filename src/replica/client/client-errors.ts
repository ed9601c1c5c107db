import { TriremeError } from '../../common/errors';
import { STATUS_CODES, type StatusValue } from '../wire/protocol';

export const ClientErrorCode = {
  ConnectTimeout: 'ERR_REPLICA_CONNECT_TIMEOUT',
  ConnectFailed: 'ERR_REPLICA_CONNECT',
  Timeout: 'ERR_REPLICA_TIMEOUT',
  Disconnected: 'ERR_REPLICA_DISCONNECTED',
  Closed: 'ERR_REPLICA_CLIENT_CLOSED',
  Protocol: 'ERR_REPLICA_PROTOCOL',
  ChecksumMismatch: 'ERR_CHECKSUM_MISMATCH',
} as const;

/**
 * A failed replica request. `code` is either a transport code (ClientErrorCode)
 * or the stable code of the replica's status (STATUS_CODES: ERR_STALE_EPOCH,
 * ERR_OUT_OF_RANGE, ...); `status` is the wire status when the replica answered.
 */
export class ReplicaClientError extends TriremeError {
  readonly status?: StatusValue;
  /** For ERR_STALE_EPOCH: the replica's current epoch. */
  readonly replicaEpoch?: number;

  constructor(code: string, message: string, options: { cause?: unknown; status?: StatusValue; replicaEpoch?: number } = {}) {
    super(code, message, options.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = 'ReplicaClientError';
    if (options.status !== undefined) this.status = options.status;
    if (options.replicaEpoch !== undefined) this.replicaEpoch = options.replicaEpoch;
  }

  static fromStatus(status: StatusValue, detail: string, replicaEpoch: number): ReplicaClientError {
    const code = STATUS_CODES[status] ?? 'ERR_INTERNAL';
    return new ReplicaClientError(code, detail ? `replica answered ${code}: ${detail}` : `replica answered ${code}`, { status, replicaEpoch });
  }
}
