import { status } from '@grpc/grpc-js';
import { TriremeError } from '../errors';

/**
 * A failure with the gRPC status code the CSI specification names for it.
 * The message goes to Kubernetes as the status detail: it must say what is wrong
 * in words an operator can act on, and never carry a stack trace or a secret.
 * `code` is `ERR_CSI_<STATUS>` so callers can branch on it like any TriremeError.
 */
export class CsiError extends TriremeError {
  readonly grpcCode: status;

  constructor(grpcCode: status, message: string, options?: { cause?: unknown }) {
    super(`ERR_CSI_${status[grpcCode]}`, message, options);
    this.name = 'CsiError';
    this.grpcCode = grpcCode;
  }
}

export const invalidArgument = (message: string): CsiError => new CsiError(status.INVALID_ARGUMENT, message);
export const notFound = (message: string): CsiError => new CsiError(status.NOT_FOUND, message);
export const alreadyExists = (message: string): CsiError => new CsiError(status.ALREADY_EXISTS, message);
export const failedPrecondition = (message: string): CsiError => new CsiError(status.FAILED_PRECONDITION, message);
export const outOfRange = (message: string): CsiError => new CsiError(status.OUT_OF_RANGE, message);
export const resourceExhausted = (message: string): CsiError => new CsiError(status.RESOURCE_EXHAUSTED, message);
export const aborted = (message: string): CsiError => new CsiError(status.ABORTED, message);
export const unavailable = (message: string): CsiError => new CsiError(status.UNAVAILABLE, message);
export const internal = (message: string, cause?: unknown): CsiError => new CsiError(status.INTERNAL, message, { cause });
