import pino from 'pino';

export type Logger = pino.Logger;

/**
 * The root logger, made once in each entry point and passed down (STYLE.md rule 6).
 * JSON lines on stderr so stdout stays free for command output; CHAP secrets and
 * other credentials are redacted wherever they appear in a logged object.
 */
export function createRootLogger(options: { level?: string; name?: string; destination?: NodeJS.WritableStream } = {}): Logger {
  const level = options.level ?? process.env.TRIREME_LOG_LEVEL ?? 'info';
  return pino(
    {
      name: options.name ?? 'trireme',
      level,
      redact: {
        paths: ['secret', '*.secret', '*.*.secret', 'chapSecret', '*.chapSecret', 'password', '*.password', 'CHAP_R', '*.CHAP_R', 'CHAP_C', '*.CHAP_C'],
        censor: '[redacted]',
      },
    },
    (options.destination ?? pino.destination({ fd: 2, sync: false })) as pino.DestinationStream,
  );
}

/** A logger that drops everything: for tests and library callers that pass none. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
