import { InvalidArgumentError } from './errors';

/** Parses `HOST:PORT`, `[v6]:PORT` or `:PORT` (all interfaces). */
export function parseHostPort(text: string, defaultPort?: number): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(text.trim());
  if (!match) throw new InvalidArgumentError(`invalid address "${text}": expected HOST:PORT`);
  const host = match[1] ?? (match[2] || '0.0.0.0');
  const port = match[3] !== undefined ? Number(match[3]) : defaultPort;
  if (port === undefined || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError(`invalid address "${text}": port must be 0-65535`);
  }
  return { host, port };
}
