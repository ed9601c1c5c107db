import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { TriremeError } from '../../src/common/errors';
import type { Logger } from '../../src/common/logger';
import { HostCommandError, type HostExecutor, type RunOptions, type RunResult } from '../../src/node';

const DEFAULT_TIMEOUT_MS = 60_000;
/** What the agent answers once it has read a request, before running anything. */
const ACK = 'ACK\n';
/** Exit status of a command the guest's `timeout -s KILL` ended (128 + SIGKILL). */
const KILLED = 137;

interface AgentReply {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Base64 per argument (the agent's request line is split on spaces); "-" is the empty argument. */
function requestLine(timeoutSeconds: number, argv: readonly string[]): string {
  return `${timeoutSeconds} ${argv.map((a) => (a === '' ? '-' : Buffer.from(a).toString('base64'))).join(' ')}\n`;
}

/** Splits "ACK\nRESULT EXIT OUT ERR\n<stdout><stderr>"; undefined while it is incomplete. */
function parseReply(data: Buffer): AgentReply | undefined {
  const ack = Buffer.from(ACK);
  if (data.length < ack.length || !data.subarray(0, ack.length).equals(ack)) return undefined;
  const end = data.indexOf('\n', ack.length);
  if (end < 0) return undefined;
  const m = /^RESULT (\d+) (\d+) (\d+)$/.exec(data.subarray(ack.length, end).toString('latin1'));
  if (!m) throw new TriremeError('ERR_VM_AGENT', `malformed agent reply: ${data.subarray(0, 200).toString('latin1')}`);
  const [exitCode, outBytes, errBytes] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const body = data.subarray(end + 1);
  if (body.length < outBytes + errBytes) return undefined;
  return { exitCode, stdout: body.subarray(0, outBytes).toString('utf8'), stderr: body.subarray(outBytes, outBytes + errBytes).toString('utf8') };
}

/**
 * A HostExecutor whose commands run inside the test VM (test/support/vm-guest),
 * through the guest's command agent behind a qemu host-forwarded port: the
 * node plugin's tools run against the guest's kernel, its iSCSI sessions, its
 * devices and its mounts, the way `nsenter --mount=/proc/1/ns/mnt --` makes
 * them run against the host's from inside a pod. It keeps ProcessExecutor's
 * contract: ok exit codes, timeouts, secret arguments never in a log or error.
 */
export class VmExecutor implements HostExecutor {
  constructor(
    private readonly port: number,
    private readonly logger: Logger,
  ) {}

  async run(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
    const secret = options.secretArgs ?? [];
    const line = ['[vm]', command, ...args.map((a, i) => (secret.includes(i) ? '[redacted]' : a))].join(' ');
    this.logger.debug({ command: line }, 'guest command');
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const started = Date.now();
    const reply = await this.exchange([command, ...args], timeoutMs);
    const killed = reply.exitCode === KILLED && Date.now() - started >= timeoutMs;
    if (reply.exitCode === 0 || (!killed && (options.okExitCodes ?? []).includes(reply.exitCode))) return reply;
    let why = killed ? `killed after ${timeoutMs} ms` : reply.stderr;
    for (const i of secret) if (args[i]) why = why.split(args[i]).join('[redacted]');
    throw new HostCommandError(line, killed ? null : reply.exitCode, why);
  }

  /**
   * Sends one request. A connection that closes before the agent's ACK ran
   * nothing (qemu accepts on the host side even while the guest's listener is
   * between connections), so only then is it tried again, for a bounded time.
   */
  private async exchange(argv: readonly string[], timeoutMs: number): Promise<AgentReply> {
    const deadline = Date.now() + 10_000;
    for (let attempt = 1; ; attempt++) {
      const result = await this.once(argv, timeoutMs);
      if (result !== 'not-started') return result;
      if (Date.now() >= deadline) throw new TriremeError('ERR_VM_AGENT', `the guest's command agent did not take "${argv[0]}" after ${attempt} attempts`);
      await sleep(100);
    }
  }

  private once(argv: readonly string[], timeoutMs: number): Promise<AgentReply | 'not-started'> {
    // The guest kills the command after its timeout; the host's own limit is a
    // little later and only catches a guest that stopped answering.
    const seconds = Math.max(1, Math.ceil(timeoutMs / 1000));
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      const socket = connect(this.port, '127.0.0.1', () => socket.write(requestLine(seconds, argv)));
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        socket.destroy();
      }, timeoutMs + 15_000);
      socket.on('data', (c: Buffer) => chunks.push(c));
      // A refused or reset connection shows as a close with no ACK.
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearTimeout(timer);
        if (timedOut) return reject(new TriremeError('ERR_VM_AGENT', `no reply to "${argv[0]}" within ${timeoutMs + 15_000} ms`));
        const data = Buffer.concat(chunks);
        if (data.length < ACK.length) return resolve('not-started');
        try {
          const reply = parseReply(data);
          if (reply) resolve(reply);
          else reject(new TriremeError('ERR_VM_AGENT', `the agent closed mid-reply to "${argv[0]}" (${data.length} bytes)`));
        } catch (err) {
          reject(err);
        }
      });
    });
  }
}
