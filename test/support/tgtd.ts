import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { OutputTail, freePort, waitForPortal } from './portal';

const execFileAsync = promisify(execFile);

/** Host tools this helper drives, for requireTools(). */
export const TGTD_TOOLS: Record<string, string> = { tgtd: 'tgt', tgtadm: 'tgt' };

export interface TgtdOptions {
  /** Regular file (or block device) behind LUN 1. */
  readonly backingFile: string;
  readonly iqn?: string;
  readonly host?: string;
  /** One-way CHAP: the initiator must log in with this account. */
  readonly chap?: { readonly user: string; readonly password: string };
  /** Mutual CHAP: tgtd answers the initiator's challenge with this account. */
  readonly mutualChap?: { readonly user: string; readonly password: string };
  /** tgtd's backing-store open flags, e.g. 'direct' or 'sync' (default: page cache, like a volatile write cache). */
  readonly bsoflags?: string;
  /** Ceiling on start-up, in ms (default 15 s). */
  readonly startTimeoutMs?: number;
}

/** A running tgtd serving one target; LUN 0 is tgtd's own controller LUN, the data is on LUN 1. */
export interface TgtdTarget {
  readonly host: string;
  readonly port: number;
  readonly iqn: string;
  readonly lun: number;
  readonly controlPort: number;
  readonly process: ChildProcess;
  /** iscsi://host:port/iqn/lun, with CHAP user%password when asked. */
  url(options?: { lun?: number; user?: string; password?: string }): string;
  /** The daemon's recent stderr, for failure messages. */
  output(): string;
  /** Deletes the target, shuts the daemon down, and kills it if it lingers. Idempotent. */
  stop(): Promise<void>;
}

const TID = '1';

async function tgtadm(controlPort: number, args: string[]): Promise<string> {
  try {
    const { stdout } = await execFileAsync('tgtadm', ['-C', String(controlPort), '--lld', 'iscsi', ...args], { timeout: 10_000 });
    return stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`tgtadm ${args.join(' ')}: ${(e.stderr ?? '').trim() || e.message}`, { cause: err });
  }
}

/**
 * A control port no other tgtd holds. tgtd's management socket is
 * /var/run/tgtd/socket.<port> with a lock file beside it, so parallel test
 * files (and the system's own tgtd on port 0) each need their own number.
 */
function pickControlPort(): number {
  for (;;) {
    // tgtd rejects control ports above 32767 ("-C argument value out of range").
    const port = 1000 + Math.floor(Math.random() * 31_000);
    if (!existsSync(`/var/run/tgtd/socket.${port}.lock`)) return port;
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function waitForControl(child: ChildProcess, controlPort: number, deadline: number): Promise<void> {
  let last: unknown;
  while (Date.now() < deadline) {
    if (exited(child)) throw new Error('tgtd exited during start-up');
    try {
      const out = await tgtadm(controlPort, ['--mode', 'system', '--op', 'show']);
      if (/State:\s*ready/.test(out)) return;
    } catch (err) {
      last = err;
    }
    await sleep(50);
  }
  throw new Error('tgtd management socket never became ready', { cause: last });
}

async function configure(controlPort: number, options: TgtdOptions, iqn: string): Promise<void> {
  await tgtadm(controlPort, ['--mode', 'target', '--op', 'new', '--tid', TID, '--targetname', iqn]);
  const lu = ['--mode', 'logicalunit', '--op', 'new', '--tid', TID, '--lun', '1', '--backing-store', options.backingFile];
  if (options.bsoflags) lu.push('--bsoflags', options.bsoflags);
  await tgtadm(controlPort, lu);
  await tgtadm(controlPort, ['--mode', 'target', '--op', 'bind', '--tid', TID, '--initiator-address', 'ALL']);
  for (const [account, outgoing] of [
    [options.chap, false],
    [options.mutualChap, true],
  ] as const) {
    if (!account) continue;
    await tgtadm(controlPort, ['--mode', 'account', '--op', 'new', '--user', account.user, '--password', account.password]);
    const bind = ['--mode', 'account', '--op', 'bind', '--tid', TID, '--user', account.user];
    await tgtadm(controlPort, outgoing ? [...bind, '--outgoing'] : bind);
  }
}

async function shutdown(child: ChildProcess, controlPort: number): Promise<void> {
  if (exited(child)) return;
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  // tgtd ignores SIGTERM while it has targets, and --op delete --mode system
  // refuses while targets exist: delete the target first (force: sessions may
  // still be logged in), then ask the daemon to exit, then make sure it did.
  await tgtadm(controlPort, ['--mode', 'target', '--op', 'delete', '--force', '--tid', TID]).catch(() => undefined);
  await tgtadm(controlPort, ['--mode', 'system', '--op', 'delete']).catch(() => undefined);
  if (await Promise.race([gone.then(() => true), sleep(5_000).then(() => false)])) return;
  child.kill('SIGKILL');
  await gone;
}

async function startOnce(options: TgtdOptions, iqn: string, host: string): Promise<TgtdTarget> {
  const port = await freePort(host);
  const controlPort = pickControlPort();
  const tail = new OutputTail();
  const child = spawn('tgtd', ['-f', '-C', String(controlPort), '--iscsi', `portal=${host}:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout?.on('data', (c: Buffer) => tail.push(c));
  child.stderr?.on('data', (c: Buffer) => tail.push(c));
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', reject);
  });
  let stopped: Promise<void> | undefined;
  const target: TgtdTarget = {
    host,
    port,
    iqn,
    lun: 1,
    controlPort,
    process: child,
    url: (o = {}) => `iscsi://${o.user ? `${o.user}%${o.password ?? ''}@` : ''}${host}:${port}/${iqn}/${o.lun ?? 1}`,
    output: () => tail.toString(),
    stop: () => (stopped ??= shutdown(child, controlPort)),
  };
  try {
    await spawned;
    const deadline = Date.now() + (options.startTimeoutMs ?? 15_000);
    await waitForControl(child, controlPort, deadline);
    await configure(controlPort, options, iqn);
    await waitForPortal(host, port, Math.max(0, deadline - Date.now()), () => !exited(child));
    return target;
  } catch (err) {
    await target.stop();
    throw new Error(`tgtd on ${host}:${port} (control ${controlPort}) failed to start: ${(err as Error).message}\n${tail}`, { cause: err });
  }
}

/**
 * Starts a real tgtd in the foreground with one target (LUN 1 on a file),
 * open to all initiator addresses. A lost race for the portal or control port
 * is retried with fresh numbers.
 */
export async function startTgtd(options: TgtdOptions): Promise<TgtdTarget> {
  const host = options.host ?? '127.0.0.1';
  const iqn = options.iqn ?? `iqn.2026-01.io.trireme.test:tgtd-${process.pid}-${Math.floor(Math.random() * 1e6)}`;
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(options, iqn, host);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}
