import { TriremeError } from '../../common/errors';
import { StoreErrorCode } from '../store-types';

export type StoreErrorCodeValue = (typeof StoreErrorCode)[keyof typeof StoreErrorCode];

/** Every failure the store reports carries one of the stable codes of StoreErrorCode. */
export class StoreError extends TriremeError {
  constructor(code: StoreErrorCodeValue | 'ERR_INVALID_ARGUMENT', message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'StoreError';
  }
}

export function isNoSpace(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
