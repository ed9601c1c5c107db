import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { TRIREME_ENTRY } from '../support/trireme-cli';

/** The `trireme` arguments the tests run: the compiled entry of this build. */
export function triremeArgs(): string[] {
  return [TRIREME_ENTRY];
}

/**
 * A random base in 20000-31999, so parallel test files rarely pick the same
 * ports, and below Linux's ephemeral range (32768+) where client sockets and
 * port-0 listeners could already hold a fixed port.
 */
export function randomPortBase(): number {
  return 20000 + Math.floor(Math.random() * 120) * 100;
}

/** Runs `trireme ARGS` to completion; stdout parsed as JSON when `json`. */
export function trireme(args: string[], options: { timeoutMs?: number } = {}): { status: number | null; stdout: string; stderr: string } {
  const result = spawnSync(process.execPath, [...triremeArgs(), ...args], { encoding: 'utf8', timeout: options.timeoutMs ?? 120_000, env: { ...process.env, TRIREME_LOG_LEVEL: 'warn' } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export function triremeJson<T>(args: string[]): T {
  const result = trireme([...args, '--json']);
  if (result.status !== 0) throw new Error(`trireme ${args.join(' ')} failed (${result.status}): ${result.stdout} ${result.stderr}`);
  return JSON.parse(result.stdout) as T;
}

/** Starts a long-running `trireme` process and resolves once stdout matches `ready`. */
export function startTrireme(
  args: string[],
  ready: RegExp,
  timeoutMs = 60_000,
  prefix: string[] = [process.execPath, ...triremeArgs()],
): Promise<{ child: ChildProcess; output: () => string; logs: () => string }> {
  const child = spawn(prefix[0], [...prefix.slice(1), ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_LOG_LEVEL: process.env.TRIREME_LOG_LEVEL ?? 'info' } });
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  // The child's JSON log, bounded: the last 4 MB are enough for the checks that read it.
  child.stderr?.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4_000_000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`trireme ${args.join(' ')} not ready after ${timeoutMs} ms:\n${out}\n${err}`)), timeoutMs);
    const check = (): void => {
      if (ready.test(out)) {
        clearTimeout(timer);
        resolve({ child, output: () => out, logs: () => err });
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`trireme ${args.join(' ')} exited (${code ?? signal}) before ready:\n${out}\n${err}`));
    });
  });
}

/** SIGTERM, then SIGKILL after graceMs; resolves when the process is gone. */
export function stopProcess(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function until<T>(what: string, probe: () => T | Promise<T>, ok: (value: T) => boolean, timeoutMs = 60_000, intervalMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}: ${JSON.stringify(value).slice(0, 2000)}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** qemu-io against an iSCSI LUN; throws with its output when it reports a failure. */
export function qemuIo(url: string, command: string): string {
  const result = spawnSync('qemu-io', ['-f', 'raw', '-c', command, url], { encoding: 'utf8', timeout: 120_000 });
  const output = `${result.stdout}${result.stderr}`;
  if (result.status !== 0 || /failed|error/i.test(output)) throw new Error(`qemu-io ${command} on ${url} failed (${result.status}): ${output}`);
  return output;
}
