import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { Registry } from 'prom-client';
import { createRootLogger, type Logger } from '../../../../src/common/logger';
import { NetworkReplicaLink } from '../../../../src/controller/engine/network-replica-link';
import { VolumeEngine } from '../../../../src/controller/engine/volume-engine';
import { ReplicaClient } from '../../../../src/replica/client/replica-client';
import { TRIREME_ENTRY } from '../../../support/trireme-cli';


export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const server = createServer();
    server.once('error', rej);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => res(port));
    });
  });
}

/** Real `trireme replica` processes on loopback ports, each with its own data directory under `dir`. */
export class ReplicaProcesses {
  readonly ports: number[] = [];
  private readonly procs: Array<ChildProcess | undefined> = [];
  readonly logLines: string[] = [];

  constructor(
    private readonly dir: string,
    private readonly size: number,
    private readonly volumeId: string,
  ) {}

  async allocate(count: number): Promise<void> {
    for (let i = 0; i < count; i++) this.ports.push(await freePort());
  }

  start(i: number): Promise<void> {
    const args = [TRIREME_ENTRY, 'replica', '--dir', join(this.dir, `r${i}`), '--size', String(this.size), '--volume-id', this.volumeId, '--listen', `127.0.0.1:${this.ports[i]}`];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_LOG_LEVEL: 'warn' } });
    this.procs[i] = child;
    let out = '';
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-4000)));
    return new Promise((res, rej) => {
      child.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('"event":"ready"')) res();
      });
      child.once('exit', (code) => rej(new Error(`replica ${i} exited (${code}) before ready: ${err}`)));
    });
  }

  kill(i: number): Promise<void> {
    const child = this.procs[i];
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((res) => {
      child.once('exit', () => res());
      child.kill('SIGKILL');
    });
  }

  /** Sends a signal that does not end the process (SIGSTOP, SIGCONT). */
  signal(i: number, signal: 'SIGSTOP' | 'SIGCONT'): void {
    this.procs[i]?.kill(signal);
  }

  killAll(): Promise<void> {
    return Promise.all(this.procs.map((_, i) => this.kill(i))).then(() => undefined);
  }

  logger(): Logger {
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => this.logLines.push(...c.toString().split('\n').filter(Boolean)));
    return createRootLogger({ level: 'info', destination: sink });
  }

  /** An engine over the replicas `which` (indexes), as a controller process would open it. */
  openEngine(which: readonly number[], opTimeoutMs: number, openTimeoutMs = 20_000): Promise<VolumeEngine> {
    const logger = this.logger();
    const links = which.map((i) => new NetworkReplicaLink({ address: `127.0.0.1:${this.ports[i]}`, logger, timeoutMs: opTimeoutMs, volumeId: this.volumeId }));
    return VolumeEngine.open({ volumeId: this.volumeId, links, logger, registry: new Registry(), tuning: { opTimeoutMs, probeIntervalMs: 200, openTimeoutMs } });
  }

  /** The whole volume as replica `i` holds it, read over its own data connection. */
  async image(i: number, epoch: number): Promise<Buffer> {
    const client = await ReplicaClient.connect({ host: '127.0.0.1', port: this.ports[i], volumeId: this.volumeId });
    try {
      const parts: Buffer[] = [];
      const step = 4 << 20;
      for (let off = 0; off < this.size; off += step) parts.push(await client.read(epoch, off, Math.min(step, this.size - off)));
      return Buffer.concat(parts);
    } finally {
      client.close();
    }
  }
}
