import { credentials, type Client, type ServiceError } from '@grpc/grpc-js';
import { csiClientConstructors } from '../../../src/common/csi';

export type CsiServiceName = 'Identity' | 'Controller' | 'Node';

/**
 * A real gRPC client over the plugin's unix socket, built from the same
 * proto/csi.proto the server loads: what kubelet and the sidecars do.
 */
export class CsiTestClient {
  private readonly clients = new Map<CsiServiceName, Client>();

  constructor(private readonly socketPath: string) {}

  private client(service: CsiServiceName): Client {
    let client = this.clients.get(service);
    if (!client) {
      const Ctor = csiClientConstructors()[service] as new (address: string, creds: ReturnType<typeof credentials.createInsecure>) => Client;
      client = new Ctor(`unix://${this.socketPath}`, credentials.createInsecure());
      this.clients.set(service, client);
    }
    return client;
  }

  call<T = Record<string, unknown>>(service: CsiServiceName, method: string, request: object = {}): Promise<T> {
    const client = this.client(service) as unknown as Record<string, (req: object, cb: (err: ServiceError | null, res: T) => void) => void>;
    return new Promise((resolve, reject) => {
      client[method].call(client, request, (err, res) => (err ? reject(err) : resolve(res)));
    });
  }

  close(): void {
    for (const client of this.clients.values()) client.close();
    this.clients.clear();
  }
}

/** The gRPC status name of a rejected call, for assert.rejects matchers. */
export function grpcStatus(code: number): (err: unknown) => boolean {
  return (err: unknown) => {
    const actual = (err as ServiceError).code;
    if (actual !== code) throw new Error(`expected gRPC status ${code}, got ${actual}: ${(err as Error).message}`);
    return true;
  };
}
