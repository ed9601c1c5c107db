import { readdir, readFile } from 'node:fs/promises';

/** Environment variable every child of a stack carries: the stack's data directory. */
export const STACK_ENV = 'TRIREME_STACK_DIR';

/**
 * Finds processes left running by a previous manager of the same data
 * directory (it was SIGKILLed, so it could not stop its children). They hold
 * the recorded ports and data directories, so a new manager must end them
 * before it starts its own. Matching on the environment, not the command
 * line, is exact: only children started for this directory carry it.
 * Linux only (/proc); elsewhere nothing is found.
 */
export async function findOrphans(dataDir: string): Promise<number[]> {
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return [];
  }
  const marker = `${STACK_ENV}=${dataDir}\0`;
  const found: number[] = [];
  for (const entry of entries) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const environ = await readFile(`/proc/${pid}/environ`, 'latin1');
      if (`${environ}\0`.includes(marker)) found.push(pid);
    } catch {
      // Gone already, or not ours to read.
    }
  }
  return found;
}

/** SIGKILLs the orphans and waits (bounded) until they are gone. */
export async function reapOrphans(dataDir: string, timeoutMs = 5000): Promise<number[]> {
  const orphans = await findOrphans(dataDir);
  for (const pid of orphans) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Exited meanwhile.
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline && orphans.some(alive)) await new Promise((r) => setTimeout(r, 50));
  return orphans;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
