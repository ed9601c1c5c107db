/**
 * One error base class for the whole project. Callers branch on `code`, a stable
 * string, never on message text (STYLE.md rule 4).
 */
export class TriremeError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TriremeError';
    this.code = code;
  }
}

/** A bad argument or configuration from a user or caller: never retried. */
export class InvalidArgumentError extends TriremeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('ERR_INVALID_ARGUMENT', message, options);
    this.name = 'InvalidArgumentError';
  }
}

export function errorCode(err: unknown): string | undefined {
  if (err && typeof err === 'object' && 'code' in err && typeof (err as { code: unknown }).code === 'string') {
    return (err as { code: string }).code;
  }
  return undefined;
}
