import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CsiTestClient } from '../../node/support/csi-client';
import { TRIREME_ENTRY } from '../../support/trireme-cli';

/**
 * `trireme csi --mode controller` over the local orchestrator, as a real
 * process with its data under `dir`: volumes take ports from `portBase` on
 * (portal, then replica data +10, management +30, metrics +40).
 */
export class LocalCsiProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly client: CsiTestClient,
    private readonly log: () => string,
  ) {}

  /** Everything the process printed so far: the stack's own account of a failure. */
  output(): string {
    return this.log();
  }

  static async start(dir: string, portBase: number): Promise<LocalCsiProcess> {
    const socket = join(dir, 'csi.sock');
    let output = '';
    const child = spawn(
      process.execPath,
      [TRIREME_ENTRY, 'csi', '--endpoint', `unix://${socket}`, '--mode', 'controller', '--data', join(dir, 'data'),
        '--portal-port', String(portBase), '--replica-port', String(portBase + 10), '--management-port', String(portBase + 30), '--metrics-port', String(portBase + 40)],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TRIREME_BIN: TRIREME_ENTRY } },
    );
    child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    for (let i = 0; i < 200 && !existsSync(socket) && child.exitCode === null; i++) await sleep(50);
    assert.ok(existsSync(socket), `no CSI socket: ${output.slice(-2000)}`);
    return new LocalCsiProcess(child, new CsiTestClient(socket), () => output);
  }

  /**
   * Closes the client, then SIGTERM (its volumes' processes stop with it),
   * SIGKILL after 15 s. Resolves with the exit code (null when it had to be killed).
   */
  async stop(): Promise<number | null> {
    this.client.close();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((done) => this.child.once('exit', done));
      this.child.kill('SIGTERM');
      await Promise.race([exited, sleep(15_000)]);
      if (this.child.exitCode === null) {
        this.child.kill('SIGKILL');
        await exited;
        return null;
      }
    }
    return this.child.exitCode;
  }
}
