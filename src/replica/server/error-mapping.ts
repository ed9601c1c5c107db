import { status as GrpcStatus, Metadata, type ServiceError } from '@grpc/grpc-js';
import { errorCode } from '../../common/errors';
import { StoreErrorCode } from '../store-types';
import { ERROR_CODE_KEY } from '../wire/control-proto';
import { Status, type StatusValue } from '../wire/protocol';

/** Store error code -> data-path status. Anything unknown is Internal (and logged by the caller). */
export function storeErrorToWireStatus(err: unknown): StatusValue {
  switch (errorCode(err)) {
    case StoreErrorCode.StaleEpoch:
      return Status.StaleEpoch;
    case StoreErrorCode.OutOfRange:
      return Status.OutOfRange;
    case StoreErrorCode.Misaligned:
      return Status.Misaligned;
    case StoreErrorCode.NoSpace:
      return Status.NoSpace;
    case StoreErrorCode.Corrupt:
      return Status.Corrupt;
    case StoreErrorCode.NotFound:
      return Status.NotFound;
    case StoreErrorCode.Busy:
      return Status.Busy;
    case StoreErrorCode.Closed:
      return Status.Closed;
    case 'ERR_INVALID_ARGUMENT':
      return Status.BadRequest;
    default:
      return Status.Internal;
  }
}

const GRPC_BY_CODE: Readonly<Record<string, GrpcStatus>> = {
  [StoreErrorCode.StaleEpoch]: GrpcStatus.FAILED_PRECONDITION,
  [StoreErrorCode.OutOfRange]: GrpcStatus.OUT_OF_RANGE,
  [StoreErrorCode.Misaligned]: GrpcStatus.INVALID_ARGUMENT,
  [StoreErrorCode.NoSpace]: GrpcStatus.RESOURCE_EXHAUSTED,
  [StoreErrorCode.Corrupt]: GrpcStatus.DATA_LOSS,
  [StoreErrorCode.NotFound]: GrpcStatus.NOT_FOUND,
  [StoreErrorCode.AlreadyExists]: GrpcStatus.ALREADY_EXISTS,
  [StoreErrorCode.Closed]: GrpcStatus.UNAVAILABLE,
  [StoreErrorCode.Busy]: GrpcStatus.ABORTED,
  ERR_INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  ERR_CHECKSUM_MISMATCH: GrpcStatus.DATA_LOSS,
};

/**
 * The one function that maps store (and request) errors to gRPC status codes.
 * The stable code travels in a trailer so clients branch on it, not on text;
 * unknown errors become INTERNAL with a generic message (no stack traces to peers).
 */
export function toGrpcError(err: unknown): Partial<ServiceError> {
  const code = errorCode(err);
  const grpcCode = code !== undefined ? GRPC_BY_CODE[code] : undefined;
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_KEY, grpcCode === undefined ? 'ERR_INTERNAL' : (code as string));
  const details = grpcCode === undefined ? 'internal error' : (err as Error).message;
  return { code: grpcCode ?? GrpcStatus.INTERNAL, details, metadata };
}
