import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { release, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import type { Logger } from '../../src/common/logger';
import { freePort, OutputTail } from './portal';
import { VmExecutor } from './vm-executor';

const run = promisify(execFile);

/** The package root, from dist/test/support. */
const ROOT = resolve(__dirname, '..', '..', '..');
/** The shared kernel-initiator harness; shared/ sits beside the checkout (DESIGN.md, testing tools). */
export const VM_HARNESS = process.env.TRIREME_VMI_SCRIPT ?? resolve(ROOT, '..', 'shared', 'vm-initiator', 'run.sh');
/** Guest-side scripts (init, command agent, by-path links) and the overlay builder. */
const GUEST_DIR = join(ROOT, 'test', 'support', 'vm-guest');
const GUEST_FILES = ['build-overlay.sh', 'init.sh', 'agent.sh', 'by-path.sh'];
/** Built artifacts and downloaded .debs, cached across runs, outside the repository. */
const WORK = process.env.TRIREME_VM_NODE_WORK ?? join(tmpdir(), 'trireme-vm-node');
/** The agent's port inside the guest; qemu forwards a host port to it. */
const AGENT_PORT = 7000;

/** Host tools the VM guest needs, with the Debian package of each (for requireTools). */
export const VM_GUEST_TOOLS = { 'qemu-system-x86_64': 'qemu-system-x86', 'dpkg-deb': 'dpkg', 'apt-get': 'apt', flock: 'util-linux' };

function digest(paths: readonly string[]): string {
  const hash = createHash('sha256');
  for (const p of paths) hash.update(readFileSync(p));
  return hash.digest('hex').slice(0, 16);
}

/**
 * Builds (once; cached under WORK) run.sh's kernel and base initramfs and this
 * guest's overlay archive. Both steps run under one flock, re-checking inside
 * it, so test processes started together never build into the same directory
 * at once. A stamp of the scripts' contents triggers a rebuild when they change.
 */
async function ensureBuilt(): Promise<{ kernel: string; initrd: string }> {
  const base = join(WORK, 'base');
  const overlay = join(WORK, 'overlay');
  mkdirSync(WORK, { recursive: true });
  const baseStamp = digest([VM_HARNESS]);
  const overlayStamp = `${baseStamp}-${digest(GUEST_FILES.map((f) => join(GUEST_DIR, f)))}`;
  const script = [
    'set -e',
    '[ "$(cat "$2/../base.stamp" 2>/dev/null)" = "$4" ] && [ -s "$2/vmlinuz" ] && [ -s "$2/initramfs.cpio.gz" ] ||',
    '  { VMI_WORK="$2" "$1" build >&2 && echo "$4" > "$2/../base.stamp"; }',
    // The overlay is rebuilt with the base too: run.sh's build.stamp names its kernel and packages.
    'stamp="$5-$(cksum < "$2/build.stamp")"',
    '[ "$(cat "$3/../overlay.stamp" 2>/dev/null)" = "$stamp" ] && [ -s "$3/initrd.gz" ] ||',
    '  { "$6" "$2" "$3" && echo "$stamp" > "$3/../overlay.stamp"; }',
  ].join('\n');
  try {
    await run('flock', [join(WORK, 'build.lock'), 'bash', '-c', script, 'build', VM_HARNESS, base, overlay, baseStamp, overlayStamp, join(GUEST_DIR, 'build-overlay.sh')], {
      timeout: 600_000,
      maxBuffer: 16 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`building the VM guest failed: ${e.message}\n${(e.stderr ?? '').slice(-3000)}`, { cause: err });
  }
  return { kernel: join(base, 'vmlinuz'), initrd: join(overlay, 'initrd.gz') };
}

/**
 * kvm when /dev/kvm works for this kernel, else tcg. /dev/kvm can be present
 * and still fail (nested virtualisation without the CPU features qemu asks
 * for), so the kernel is booted once without an initramfs: a panic within 10 s
 * means KVM runs it. The verdict is cached per host kernel.
 */
async function accelerator(kernel: string): Promise<'kvm' | 'tcg'> {
  const cache = join(WORK, `accel-${release()}`);
  if (existsSync(cache)) return readFileSync(cache, 'utf8').trim() === 'kvm' ? 'kvm' : 'tcg';
  let verdict: 'kvm' | 'tcg' = 'tcg';
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    const args = ['-accel', 'kvm', '-cpu', 'host', '-m', '128', '-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-kernel', kernel];
    const { stdout } = await run('timeout', ['10', 'qemu-system-x86_64', ...args, '-append', 'console=ttyS0 panic=-1 rdinit=/nonexistent root=/dev/nonexistent']).catch(
      (err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }),
    );
    if (stdout.includes('Kernel panic')) verdict = 'kvm';
  } catch {
    // No usable /dev/kvm: emulate.
  }
  writeFileSync(cache, verdict);
  return verdict;
}

export interface VmGuest {
  /** How qemu runs the guest: kvm, or tcg emulation where KVM does not work. */
  readonly accel: 'kvm' | 'tcg';
  /** From qemu's start to the agent's first answer. */
  readonly bootMs: number;
  /** Runs commands inside the guest: the node plugin's HostExecutor. */
  readonly executor: VmExecutor;
  /** The guest's serial console so far, for failure messages. */
  console(): string;
  /** Sessions, disks, by-path links, processes and the kernel log tail of the guest, for failure messages. */
  state(): Promise<string>;
  /** Powers the VM off (kills qemu). Idempotent. */
  stop(): Promise<void>;
}

const STATE_SCRIPT = [
  'echo "## sessions"; iscsiadm -m session -P 3 2>&1 | grep -E "Target:|Current Portal|iSCSI Session State|Attached scsi disk|Lun:"',
  'echo "## /sys/block"; ls /sys/block',
  'echo "## by-path"; ls -l /dev/disk/by-path 2>&1',
  // Names only: a node tool's arguments can carry a CHAP secret (iscsiadm -v),
  // and this text is appended to the errors tests check for secrets.
  'echo "## processes"; ps -o pid,stat,comm | grep -v -e "\\[" -e " ps$"',
  'echo "## dmesg"; dmesg | tail -n 30',
].join('; ');

async function guestState(executor: VmExecutor): Promise<string> {
  try {
    return (await executor.run('sh', ['-c', STATE_SCRIPT], { timeoutMs: 20_000 })).stdout;
  } catch (err) {
    return `guest state unavailable: ${(err as Error).message}`;
  }
}

/**
 * Boots the test VM: run.sh's Debian kernel, its initramfs with this guest's
 * overlay (iscsid, the node plugin's tools, the command agent), user-mode
 * networking in which the guest reaches the host's loopback at 10.0.2.2, and
 * a host port forwarded to the agent. Resolves once the agent runs a command.
 */
export async function bootVmGuest(logger: Logger, options: { bootTimeoutMs?: number; memoryMiB?: number; lifetimeSeconds?: number } = {}): Promise<VmGuest> {
  const { kernel, initrd } = await ensureBuilt();
  const accel = await accelerator(kernel);
  const port = await freePort();
  const args = ['-accel', accel, '-cpu', accel === 'kvm' ? 'host' : 'max', '-smp', '2', '-m', String(options.memoryMiB ?? 512)];
  args.push('-display', 'none', '-monitor', 'none', '-serial', 'stdio', '-no-reboot', '-nodefaults', '-kernel', kernel, '-initrd', initrd);
  args.push('-append', `console=ttyS0 quiet panic=-1 trireme.agent_port=${AGENT_PORT}`);
  args.push('-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:${AGENT_PORT}`, '-device', 'virtio-net-pci,netdev=n0');
  // A VM left behind by a test process that was killed must not run on: timeout
  // bounds its life, and its own process group lets stop() signal timeout and qemu together.
  const lifetimeSeconds = String(options.lifetimeSeconds ?? 900);
  const qemu: ChildProcess = spawn('timeout', ['-s', 'KILL', lifetimeSeconds, 'qemu-system-x86_64', ...args], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const signal = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-(qemu.pid as number), sig);
    } catch {
      // Already gone.
    }
  };
  const tail = new OutputTail();
  let text = '';
  let exited = false;
  const gone = new Promise<void>((done) => qemu.once('exit', () => ((exited = true), done())));
  qemu.on('error', () => undefined);
  const ready = new Promise<void>((accept, reject) => {
    const onData = (c: Buffer): void => {
      tail.push(c);
      text = (text + c.toString()).slice(-8192);
      if (text.includes('TRIREME-VM: agent ready')) accept();
      else if (text.includes('TRIREME-VM: FAILED')) reject(new Error('the guest failed to start'));
    };
    qemu.stdout?.on('data', onData);
    qemu.stderr?.on('data', onData);
    void gone.then(() => reject(new Error('qemu exited during boot')));
  });
  const stop = async (): Promise<void> => {
    if (exited) return;
    signal('SIGTERM');
    const timer = setTimeout(() => signal('SIGKILL'), 5_000);
    await gone;
    clearTimeout(timer);
  };
  const bootTimeoutMs = options.bootTimeoutMs ?? 180_000;
  const started = Date.now();
  try {
    // The timer is cancelled once booted: a pending one would hold the test process open.
    const timer = new AbortController();
    const timeout = sleep(bootTimeoutMs, undefined, { signal: timer.signal }).then(() => Promise.reject(new Error(`no agent after ${bootTimeoutMs} ms`)));
    timeout.catch(() => undefined);
    await Promise.race([ready, timeout]).finally(() => timer.abort());
    const executor = new VmExecutor(port, logger);
    await executor.run('true', [], { timeoutMs: 10_000 });
    const bootMs = Date.now() - started;
    logger.info({ accel, bootMs }, 'vm guest up');
    return { accel, bootMs, executor, console: () => tail.toString(), state: () => guestState(executor), stop };
  } catch (err) {
    await stop();
    throw new Error(`VM guest (accel ${accel}) did not start: ${(err as Error).message}\n${tail.toString()}`, { cause: err });
  }
}
