import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { TriremeError, errorCode } from '../common/errors';
import { ManagerClient } from '../controller/manager/manager-client';
import { managerSocketPath } from '../controller/manager/standalone-stack';

/**
 * The standalone stack's data directory: --data, else $TRIREME_DATA, else
 * ~/.trireme. The home directory (not ./.trireme) so that `trireme volume ls`
 * finds the manager from any working directory.
 */
export function defaultDataDir(): string {
  return process.env.TRIREME_DATA || join(homedir(), '.trireme');
}

export function addDataOption(command: Command): Command {
  return command.option('--data <dir>', 'data directory of the standalone stack ($TRIREME_DATA, default ~/.trireme)');
}

export function addJsonOption(command: Command): Command {
  return command.option('--json', 'print machine-readable JSON on stdout');
}

export interface OperatorOptions {
  data?: string;
  json?: boolean;
}

/** Options of a sub-command merged with those of its parents (`--data` may come first). */
export function operatorOptions(command: Command): OperatorOptions {
  return command.optsWithGlobals<OperatorOptions>();
}

async function connect(dataDir: string): Promise<ManagerClient> {
  const socket = managerSocketPath(resolve(dataDir));
  const notRunning = `the manager is not running (no answer on ${socket}); start it with \`trireme up --data ${dataDir}\``;
  if (!existsSync(socket)) throw new TriremeError('ERR_MANAGER_NOT_RUNNING', notRunning);
  const client = new ManagerClient(`unix://${socket}`);
  try {
    await client.waitForReady(3000);
  } catch (err) {
    client.close();
    throw new TriremeError('ERR_MANAGER_NOT_RUNNING', notRunning, { cause: err });
  }
  return client;
}

/**
 * Runs one operator action against the manager and prints its result: JSON on
 * stdout with --json, else the text `render` makes. Failures print a clear
 * message (and with --json an {"error":{code,message}} object) and set exit code 1.
 */
export async function runOperator<T>(command: Command, action: (client: ManagerClient) => Promise<T>, render: (result: T) => string, watchSeconds?: number): Promise<void> {
  const options = operatorOptions(command);
  let client: ManagerClient | undefined;
  try {
    client = await connect(options.data ?? defaultDataDir());
    if (watchSeconds !== undefined) {
      await watch(client, action, render, watchSeconds, options.json === true);
      return;
    }
    const result = await action(client);
    process.stdout.write(options.json ? `${JSON.stringify(result ?? {}, null, 2)}\n` : `${render(result)}\n`);
  } catch (err) {
    const code = errorCode(err) ?? 'ERR_INTERNAL';
    const message = (err as Error).message;
    if (options.json) process.stdout.write(`${JSON.stringify({ error: { code, message } }, null, 2)}\n`);
    process.stderr.write(`trireme: ${message}\n`);
    process.exitCode = 1;
  } finally {
    client?.close();
  }
}

/**
 * Repeats an action every `seconds` until SIGINT/SIGTERM: on a terminal the
 * screen is redrawn, otherwise each view follows the previous one; with
 * --json one JSON document per line.
 */
async function watch<T>(client: ManagerClient, action: (client: ManagerClient) => Promise<T>, render: (result: T) => string, seconds: number, json: boolean): Promise<void> {
  let stopped = false;
  let wake: (() => void) | undefined;
  const stop = (): void => {
    stopped = true;
    wake?.();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    while (!stopped) {
      const result = await action(client);
      if (json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else if (process.stdout.isTTY) process.stdout.write(`\x1b[2J\x1b[H${render(result)}\n`);
      else process.stdout.write(`${render(result)}\n\n`);
      await new Promise<void>((resolve) => {
        wake = resolve;
        setTimeout(resolve, seconds * 1000);
      });
    }
  } finally {
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
  }
}
