import { connect } from 'node:net';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from '../../common/logger';
import { SupervisedChild, type BackoffPolicy, type ChildSpec } from './supervisor';
import type { VolumeRecord } from './volume-records';

/** How to run the `trireme` binary as a child: command plus leading arguments. */
export interface TriremeInvocation {
  readonly command: string;
  readonly args: readonly string[];
}

export interface ProcessLayout {
  readonly dataDir: string;
  /** Address the children bind and the others dial. */
  readonly host: string;
  readonly trireme: TriremeInvocation;
  readonly env?: NodeJS.ProcessEnv;
  readonly backoff?: BackoffPolicy;
}

export function volumeDir(dataDir: string, volume: string): string {
  return join(dataDir, 'volumes', volume);
}

export function replicaDir(dataDir: string, volume: string, index: number): string {
  return join(volumeDir(dataDir, volume), `replica-${index}`);
}

/**
 * Node flags for a replica process. A replica is an I/O relay with a small
 * live heap (~12 MiB), but V8 grows the young generation up to 16 MiB per
 * semi-space under a write burst and never gives it back while idle; a 1 MiB
 * semi-space keeps that growth out of its resident memory. Scavenges get more
 * frequent, not longer: almost nothing a request allocates survives it.
 * --expose-gc lets the replica run one full collection when it turns idle
 * after work (src/common/idle-collector.ts).
 * Only valid where the child is started as `node ... entry.js` (the CLI's own
 * invocation); the Kubernetes replica container passes the same flags.
 */
export const REPLICA_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--expose-gc'];

/**
 * glibc malloc settings for a replica process (glibc tunables, read at exec).
 * Socket reads and write payloads are off-heap buffers freed whenever the
 * garbage collector gets to them; with the default dynamic mmap threshold
 * (raised to 1 MiB by the first freed 1 MiB payload) they land on the brk
 * heap and in one arena per thread, and the freed holes stay resident: about
 * 40 MiB after a burst. One arena (the threads are libuv's file workers and
 * V8's helpers, never contended here) and a fixed 128 KiB mmap threshold
 * (payloads are mapped and unmapped, 64 KiB socket reads stay on the heap)
 * return that memory. Set only when the environment does not choose its own.
 */
export const REPLICA_GLIBC_TUNABLES = 'glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=131072';

/** The environment a replica child gets: the layout's, plus the malloc settings unless it names its own. */
export function replicaEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const base = env ?? process.env;
  return base.GLIBC_TUNABLES !== undefined ? base : { ...base, GLIBC_TUNABLES: REPLICA_GLIBC_TUNABLES };
}

/**
 * Node flags for a controller process, for the same reasons as a replica's:
 * its live heap is small (sessions, the engine's in-flight table) and what a
 * burst allocates is iSCSI PDUs and data buffers that die young. The
 * semi-space is CONTROLLER_SEMI_SPACE_MIB rather than the replica's 1 MiB:
 * the controller allocates more per write (a PDU parsed, a SCSI command, one
 * request per replica link), and at 1 MiB it scavenges often enough to cost
 * measurable CPU per 4k write (bench/volume-vs-tgtd.ts, controller CPU).
 * --expose-gc: one full collection when it turns idle after work
 * (src/common/idle-collector.ts).
 */
export const CONTROLLER_SEMI_SPACE_MIB = 2;
export const CONTROLLER_NODE_FLAGS: readonly string[] = [`--max-semi-space-size=${CONTROLLER_SEMI_SPACE_MIB}`, '--expose-gc'];

/**
 * glibc malloc settings for a controller: the replica's, for the same
 * off-heap buffers (data-out segments, read data on its way to the initiator).
 */
export const CONTROLLER_GLIBC_TUNABLES = REPLICA_GLIBC_TUNABLES;

/** The environment a controller child gets: the layout's, plus the malloc settings unless it names its own. */
export function controllerEnv(env: NodeJS.ProcessEnv | undefined): NodeJS.ProcessEnv {
  const base = env ?? process.env;
  return base.GLIBC_TUNABLES !== undefined ? base : { ...base, GLIBC_TUNABLES: CONTROLLER_GLIBC_TUNABLES };
}

const hostPort = (host: string, port: number): string => (host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * The processes of one volume: one replica per record entry and one
 * controller. Specs read the current record at every (re)start, so a restarted
 * controller dials the replicas the volume has now, not those it had at boot.
 */
export class VolumeProcesses {
  readonly replicas = new Map<number, SupervisedChild>();
  readonly controller: SupervisedChild;
  private record: VolumeRecord;

  constructor(
    record: VolumeRecord,
    private readonly layout: ProcessLayout,
    private readonly logger: Logger,
  ) {
    this.record = record;
    this.controller = new SupervisedChild(`${record.name}/controller`, () => this.controllerSpec(), logger, layout.backoff);
  }

  update(record: VolumeRecord): void {
    this.record = record;
  }

  replicaAddress(port: number): string {
    return hostPort(this.layout.host, port);
  }

  private replicaSpec(index: number): ChildSpec {
    const entry = this.record.replicas.find((r) => r.index === index);
    if (!entry) throw new Error(`replica ${index} of ${this.record.name} has no record`);
    const dir = replicaDir(this.layout.dataDir, this.record.name, index);
    const node = this.layout.trireme.command === process.execPath ? REPLICA_NODE_FLAGS : [];
    const args = [...node, ...this.layout.trireme.args, 'replica', '--dir', dir, '--listen', this.replicaAddress(entry.port)];
    // A fresh replica is created at the volume's size; an existing one keeps
    // the size its store holds (the controller resizes it when they differ).
    if (!existsSync(dir) || readdirSync(dir).length === 0) args.push('--size', String(this.record.sizeBytes));
    return { command: this.layout.trireme.command, args, env: replicaEnv(this.layout.env), logFile: join(volumeDir(this.layout.dataDir, this.record.name), 'logs', `replica-${index}.log`) };
  }

  private controllerSpec(): ChildSpec {
    const r = this.record;
    const node = this.layout.trireme.command === process.execPath ? CONTROLLER_NODE_FLAGS : [];
    const args = [...node, ...this.layout.trireme.args, 'controller', '--volume', r.name, '--size', String(r.sizeBytes), '--iqn', r.iqn];
    for (const replica of r.replicas) args.push('--replica', this.replicaAddress(replica.port));
    args.push('--portal', hostPort(this.layout.host, r.portalPort));
    args.push('--management', hostPort(this.layout.host, r.managementPort));
    args.push('--metrics', hostPort(this.layout.host, r.metricsPort));
    let env = controllerEnv(this.layout.env);
    if (r.chap) {
      // The secret goes through the environment: argv is world-readable in /proc.
      args.push('--chap-user', r.chap.user);
      env = { ...env, TRIREME_CHAP_SECRET: r.chap.secret };
    }
    return { command: this.layout.trireme.command, args, env, logFile: join(volumeDir(this.layout.dataDir, r.name), 'logs', 'controller.log') };
  }

  startReplica(index: number): SupervisedChild {
    let child = this.replicas.get(index);
    if (!child) {
      child = new SupervisedChild(`${this.record.name}/replica-${index}`, () => this.replicaSpec(index), this.logger, this.layout.backoff);
      this.replicas.set(index, child);
    }
    child.start();
    return child;
  }

  async stopReplica(index: number): Promise<void> {
    const child = this.replicas.get(index);
    this.replicas.delete(index);
    await child?.stop();
  }

  /**
   * Replicas first, so the controller finds a quorum on its first attempt.
   * `beforeController` runs once the replicas listen (a clone fills them there).
   */
  async start(readyTimeoutMs: number, beforeController?: (replicaAddresses: string[]) => Promise<void>): Promise<void> {
    for (const replica of this.record.replicas) this.startReplica(replica.index);
    await Promise.all(this.record.replicas.map((r) => waitForPort(this.layout.host, r.port, readyTimeoutMs)));
    if (beforeController) await beforeController(this.record.replicas.map((r) => this.replicaAddress(r.port)));
    this.controller.start();
  }

  /** Controller first: it stops serving before its replicas go away. */
  async stop(): Promise<void> {
    await this.controller.stop();
    await Promise.all([...this.replicas.keys()].map((index) => this.stopReplica(index)));
  }
}

/** Resolves once HOST:PORT accepts a TCP connection; rejects after timeoutMs. */
export async function waitForPort(host: string, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect({ host, port });
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
