import { execFile } from 'node:child_process';
import { TriremeError } from '../common/errors';
import type { Logger } from '../common/logger';

const DEFAULT_TIMEOUT_MS = 60_000;

export interface RunOptions {
  /** Kill the command after this long (default 60 s): a hung tool must not hold a volume lock forever. */
  readonly timeoutMs?: number;
  /** Exit codes that count as success besides 0 (iscsiadm reports "already done" that way). */
  readonly okExitCodes?: readonly number[];
  /** Indexes into args that hold secrets: they never reach a log line or an error message. */
  readonly secretArgs?: readonly number[];
}

export interface RunResult {
  readonly stdout: string;
  readonly stderr: string;
  readonly exitCode: number;
}

/**
 * The one seam between the node plugin and the host: every host tool (iscsiadm,
 * blkid, mkfs, mount, stat, resize2fs, ...) runs through it, so the node service
 * works the same on a host and inside a container, and a test can see each call.
 */
export interface HostExecutor {
  run(command: string, args: readonly string[], options?: RunOptions): Promise<RunResult>;
}

export class HostCommandError extends TriremeError {
  readonly exitCode: number | null;
  readonly stderr: string;

  constructor(commandLine: string, exitCode: number | null, stderr: string, options?: { cause?: unknown }) {
    const detail = stderr.trim().split('\n').slice(-3).join('; ');
    super('ERR_HOST_COMMAND', `${commandLine} failed (exit ${exitCode ?? 'signal'})${detail ? `: ${detail}` : ''}`, options);
    this.name = 'HostCommandError';
    this.exitCode = exitCode;
    this.stderr = stderr;
  }
}

function printable(argv: readonly string[], secretIndexes: readonly number[]): string {
  return argv.map((a, i) => (secretIndexes.includes(i) ? '[redacted]' : a)).join(' ');
}

/**
 * Runs commands with execFile (no shell: arguments from Kubernetes are never
 * parsed by one). `prefix` is put before every command line: empty on a host,
 * `nsenter --mount=/proc/1/ns/mnt --` inside a privileged pod with hostPID, so
 * mounts land in the host's mount namespace where kubelet can see them.
 */
export class ProcessExecutor implements HostExecutor {
  constructor(
    private readonly logger: Logger,
    private readonly prefix: readonly string[] = [],
  ) {}

  run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const argv = [...this.prefix, command, ...args];
    const line = printable(argv, (options.secretArgs ?? []).map((i) => i + this.prefix.length + 1));
    this.logger.debug({ command: line }, 'host command');
    return new Promise((resolve, reject) => {
      execFile(argv[0], argv.slice(1), { timeout: options.timeoutMs ?? DEFAULT_TIMEOUT_MS, maxBuffer: 16 * 1024 * 1024, encoding: 'utf8' }, (err, stdout, stderr) => {
        if (!err) {
          resolve({ stdout, stderr, exitCode: 0 });
          return;
        }
        const exitCode = typeof err.code === 'number' ? err.code : null;
        if (exitCode !== null && (options.okExitCodes ?? []).includes(exitCode)) {
          resolve({ stdout, stderr, exitCode });
          return;
        }
        // Tools echo their arguments in error messages ("cannot access 'X'"):
        // secret values are scrubbed from stderr too before it goes anywhere.
        let why = err.killed ? `killed after ${options.timeoutMs ?? DEFAULT_TIMEOUT_MS} ms` : exitCode === null && typeof err.code === 'string' ? err.code : stderr;
        for (const i of options.secretArgs ?? []) if (args[i]) why = why.split(args[i]).join('[redacted]');
        reject(new HostCommandError(line, exitCode, why));
      });
    });
  }
}

export type ExecutorMode = 'direct' | 'nsenter';

/** Picks the executor from configuration (`trireme csi --executor`). */
export function createExecutor(mode: ExecutorMode, logger: Logger): HostExecutor {
  return mode === 'nsenter' ? new ProcessExecutor(logger, ['nsenter', '--mount=/proc/1/ns/mnt', '--']) : new ProcessExecutor(logger);
}
