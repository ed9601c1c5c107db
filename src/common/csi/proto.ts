import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadPackageDefinition, type ServiceDefinition } from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

/**
 * Loader options shared by the server and by tests' clients: snake_case field
 * names as in the spec, enums as their names, int64 as JS numbers (sizes stay far
 * below 2^53), defaults filled in (the spec says an unset field equals its zero
 * value), and a virtual field naming which member of each oneof is set.
 */
export const CSI_LOADER_OPTIONS: Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

/** proto/csi.proto, found from both src/ (ts-node style runs) and dist/src/. */
export function csiProtoPath(): string {
  for (const up of [['..', '..', '..'], ['..', '..', '..', '..']]) {
    const candidate = join(__dirname, ...up, 'proto', 'csi.proto');
    if (existsSync(candidate)) return candidate;
  }
  throw new Error('proto/csi.proto not found beside the package');
}

export interface CsiServices {
  Identity: ServiceDefinition;
  Controller: ServiceDefinition;
  Node: ServiceDefinition;
}

let cached: { services: CsiServices; clients: Record<string, unknown> } | undefined;

function load(): { services: CsiServices; clients: Record<string, unknown> } {
  if (!cached) {
    const definition = loadSync(csiProtoPath(), CSI_LOADER_OPTIONS);
    const pkg = loadPackageDefinition(definition) as unknown as { csi: { v1: Record<string, { service: ServiceDefinition }> } };
    const v1 = pkg.csi.v1;
    cached = {
      services: { Identity: v1.Identity.service, Controller: v1.Controller.service, Node: v1.Node.service },
      clients: v1 as unknown as Record<string, unknown>,
    };
  }
  return cached;
}

/** The three CSI service definitions, loaded once per process. */
export function csiServices(): CsiServices {
  return load().services;
}

/** The generated client constructors (`Identity`, `Controller`, `Node`), for callers of a CSI socket. */
export function csiClientConstructors(): Record<string, unknown> {
  return load().clients;
}
