import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../../common/logger';

/** How to start one child; re-evaluated before every (re)start so it sees the current record. */
export interface ChildSpec {
  readonly command: string;
  readonly args: readonly string[];
  readonly env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here (the child's pino JSON lines). */
  readonly logFile: string;
}

export type ChildState = 'starting' | 'running' | 'backoff' | 'stopped';

export interface ChildStatus {
  readonly state: ChildState;
  readonly pid: number;
  readonly restarts: number;
  readonly lastExit: string;
}

export interface BackoffPolicy {
  /** First restart delay. */
  readonly initialMs: number;
  /** Delays double up to this bound. */
  readonly maxMs: number;
  /** A run that lasted this long resets the delay to initialMs. */
  readonly stableMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { initialMs: 250, maxMs: 10_000, stableMs: 30_000 };

/**
 * One supervised child process: restarted after every unexpected exit with a
 * bounded exponential backoff (a crash loop costs at most one start per maxMs),
 * stopped with SIGTERM then SIGKILL after a grace period.
 */
export class SupervisedChild {
  private child: ChildProcess | undefined;
  private state: ChildState = 'stopped';
  private restarts = 0;
  private lastExit = '';
  private delayMs: number;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private wanted = false;
  private exitWaiters: Array<() => void> = [];

  constructor(
    readonly name: string,
    private readonly spec: () => ChildSpec,
    private readonly logger: Logger,
    private readonly backoff: BackoffPolicy = DEFAULT_BACKOFF,
  ) {
    this.delayMs = backoff.initialMs;
  }

  status(): ChildStatus {
    return { state: this.state, pid: this.child?.pid ?? 0, restarts: this.restarts, lastExit: this.lastExit };
  }

  /** The live process, for tests and fault injection. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  start(): void {
    if (this.wanted) return;
    this.wanted = true;
    this.launch();
  }

  private launch(): void {
    this.timer = undefined;
    if (!this.wanted) return;
    const spec = this.spec();
    mkdirSync(dirname(spec.logFile), { recursive: true });
    const fd = openSync(spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(spec.command, [...spec.args], { stdio: ['ignore', fd, fd], env: spec.env ?? process.env });
    } finally {
      closeSync(fd);
    }
    this.child = child;
    this.state = 'starting';
    this.startedAt = Date.now();
    child.once('spawn', () => {
      if (this.child === child) this.state = 'running';
      this.logger.info({ child: this.name, pid: child.pid }, 'child started');
    });
    child.once('error', (err) => {
      this.logger.error({ child: this.name, err }, 'child could not be started');
      // A failed spawn may never emit 'exit'; onExit ignores the duplicate when it does.
      if (child.pid === undefined) this.onExit(child, null, null);
    });
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child !== child) return;
    this.child = undefined;
    this.lastExit = signal ? `signal ${signal}` : `exit code ${code ?? 'unknown'}`;
    const waiters = this.exitWaiters;
    this.exitWaiters = [];
    for (const w of waiters) w();
    if (!this.wanted) {
      this.state = 'stopped';
      return;
    }
    if (Date.now() - this.startedAt >= this.backoff.stableMs) this.delayMs = this.backoff.initialMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.backoff.maxMs);
    this.restarts++;
    this.state = 'backoff';
    this.logger.warn({ child: this.name, exit: this.lastExit, restartInMs: delay, restarts: this.restarts }, 'child exited; restarting');
    this.timer = setTimeout(() => this.launch(), delay);
  }

  /** Stops the child (SIGTERM, SIGKILL after graceMs) and keeps it stopped. */
  async stop(graceMs = 5000): Promise<void> {
    this.wanted = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const child = this.child;
    if (!child) {
      this.state = 'stopped';
      return;
    }
    const exited = new Promise<void>((resolve) => this.exitWaiters.push(resolve));
    child.kill('SIGTERM');
    // A stopped (SIGSTOP) child only sees SIGTERM once continued.
    child.kill('SIGCONT');
    const kill = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(kill);
  }

  /** Sends a signal to the live child (fault injection: SIGKILL, SIGSTOP, SIGCONT). */
  signal(signal: NodeJS.Signals): boolean {
    return this.child ? this.child.kill(signal) : false;
  }
}
