import { createServer } from 'node:net';
import { TriremeError } from '../../common/errors';

/** Whether HOST:PORT can be bound right now (nothing else listens there). */
export function isPortFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen({ host, port, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Finds the first port from `base` upwards that no volume record holds and
 * that is free on `host`. Ports are kept in the records, so a volume keeps its
 * addresses across restarts of the stack; probing skips ports other programs
 * hold (tgtd on 3260, a second stack).
 */
export async function allocatePort(host: string, base: number, taken: ReadonlySet<number>, span = 1000): Promise<number> {
  for (let port = base; port < base + span && port <= 65535; port++) {
    if (taken.has(port)) continue;
    if (await isPortFree(host, port)) return port;
  }
  throw new TriremeError('ERR_NO_PORT', `no free port in ${base}-${base + span - 1} on ${host}`);
}
