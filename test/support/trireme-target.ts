import { spawn, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { OutputTail, waitForPortal } from './portal';
import { TRIREME_ENTRY } from './trireme-cli';

/** The package root, from dist/test/support. */
const ROOT = resolve(__dirname, '..', '..', '..');

export interface TriremeTargetOptions {
  /** `file:PATH` or `mem`, as `trireme target --device` takes it. */
  readonly device: string;
  /** `--size`, e.g. `128M`. */
  readonly size: string;
  readonly iqn?: string;
  readonly host?: string;
  /** Further command-line arguments (CHAP options and the like). */
  readonly extraArgs?: readonly string[];
  /** pino level for the child (default warn, so logs stay readable in failures). */
  readonly logLevel?: string;
  /** Ceiling on start-up, in ms (default 20 s). */
  readonly startTimeoutMs?: number;
}

export interface TriremeTarget {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly lun: number;
  readonly process: ChildProcess;
  url(options?: { lun?: number; user?: string; password?: string }): string;
  /** Recent stdout and stderr of the target, for failure messages. */
  output(): string;
  /** How the process ended, or undefined while it runs. */
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  /** Whether the process has ended without being asked to. */
  crashed(): boolean;
  /** SIGTERM, then SIGKILL after 5 s. Idempotent. */
  stop(): Promise<void>;
}

/** The command that runs the CLI of this build (support/trireme-cli.ts says why not bin/trireme.js). */
function command(args: string[]): { file: string; argv: string[] } {
  return { file: process.execPath, argv: [TRIREME_ENTRY, ...args] };
}

/**
 * The line `trireme target` prints on stdout once it listens:
 * "Serving DEVICE (N bytes) as IQN LUN 0 on HOST:PORT".
 */
const READY = /^Serving .* on (\S+):(\d+)\s*$/m;

interface Watched {
  readonly tail: OutputTail;
  exit(): { code: number | null; signal: NodeJS.Signals | null } | undefined;
  readonly gone: Promise<void>;
  /** Resolves with the port of the ready line; rejects if the process ends or stays silent. */
  readonly ready: Promise<number>;
  stop(): Promise<void>;
  stopping(): boolean;
}

/** Collects a child's output, its exit, its ready line, and stops it with SIGTERM then SIGKILL. */
function watch(child: ChildProcess, readyTimeoutMs: number): Watched {
  const tail = new OutputTail();
  let ended: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  let stopping = false;
  let stdout = '';
  const gone = new Promise<void>((done) =>
    child.once('exit', (code, signal) => {
      ended = { code, signal };
      done();
    }),
  );
  const ready = new Promise<number>((accept, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ready line after ${readyTimeoutMs} ms`)), readyTimeoutMs);
    const settle = (fn: () => void): void => {
      clearTimeout(timer);
      fn();
    };
    child.stdout?.on('data', (c: Buffer) => {
      tail.push(c);
      stdout = (stdout + c.toString()).slice(-4096);
      const m = READY.exec(stdout);
      if (m) settle(() => accept(Number(m[2])));
    });
    child.once('error', (err) => settle(() => reject(err)));
    void gone.then(() => settle(() => reject(new Error(`exited (${JSON.stringify(ended)}) before its ready line`))));
  });
  child.stderr?.on('data', (c: Buffer) => tail.push(c));
  const stop = async (): Promise<void> => {
    stopping = true;
    if (ended) return;
    child.kill('SIGTERM');
    if (await Promise.race([gone.then(() => true), sleep(5_000).then(() => false)])) return;
    child.kill('SIGKILL');
    await gone;
  };
  return { tail, exit: () => ended, gone, ready, stop, stopping: () => stopping };
}

/**
 * Starts `trireme target` as a child process on port 0 of the loopback
 * address (and its /metrics endpoint on port 0 too, so parallel targets never
 * collide), waits for its ready line, then for its portal to accept a connection.
 */
export async function startTriremeTarget(options: TriremeTargetOptions): Promise<TriremeTarget> {
  const host = options.host ?? '127.0.0.1';
  const iqn = options.iqn ?? `iqn.2026-01.io.trireme.test:target-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  const args = ['--log-level', options.logLevel ?? 'warn', 'target', '--device', options.device, '--size', options.size];
  args.push('--portal', `${host}:0`, '--metrics', '127.0.0.1:0', '--iqn', iqn, ...(options.extraArgs ?? []));
  const { file, argv } = command(args);
  const child = spawn(file, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  const w = watch(child, options.startTimeoutMs ?? 20_000);
  let stopped: Promise<void> | undefined;
  let port = 0;
  const target: TriremeTarget = {
    host,
    get port() {
      return port;
    },
    iqn,
    lun: 0,
    process: child,
    url: (o = {}) => `iscsi://${o.user ? `${o.user}%${o.password ?? ''}@` : ''}${host}:${port}/${iqn}/${o.lun ?? 0}`,
    output: () => w.tail.toString(),
    exit: () => w.exit(),
    crashed: () => w.exit() !== undefined && !w.stopping(),
    stop: () => (stopped ??= w.stop()),
  };
  try {
    port = await w.ready;
    await waitForPortal(host, port, 5_000, () => w.exit() === undefined);
    return target;
  } catch (err) {
    await target.stop();
    throw new Error(`trireme target failed to start: ${(err as Error).message}\n${w.tail}`, { cause: err });
  }
}
