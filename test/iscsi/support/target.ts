import { silentLogger } from '../../../src/common/logger';
import { createRegistry, type Registry } from '../../../src/common/metrics';
import { MemoryDevice } from '../../../src/iscsi/device/memory-device';
import { IscsiServer, type IscsiServerOptions } from '../../../src/iscsi/server';
import type { ChapCredentials } from '../../../src/iscsi/target-config';

export const TEST_IQN = 'iqn.2026-11.io.trireme:test';

export interface RunningTarget {
  server: IscsiServer;
  port: number;
  iqn: string;
  device: MemoryDevice;
  registry: Registry;
  url(lun?: number, credentials?: string): string;
  close(): Promise<void>;
}

/** An in-process target on a port-0 listener, over a memory device. */
export async function startTarget(
  options: { size?: number; chap?: ChapCredentials; mutualChap?: ChapCredentials; iqn?: string; connection?: IscsiServerOptions['connection']; offers?: IscsiServerOptions['offers']; discoveryChap?: IscsiServerOptions['discoveryChap']; maxConnections?: number } = {},
): Promise<RunningTarget> {
  const registry = createRegistry({ defaultMetrics: false });
  const device = new MemoryDevice({ size: options.size ?? 16 * 1024 * 1024 });
  const iqn = options.iqn ?? TEST_IQN;
  const server = new IscsiServer({ logger: silentLogger(), registry, connection: options.connection, offers: options.offers, discoveryChap: options.discoveryChap, maxConnections: options.maxConnections });
  server.addTarget({ iqn, luns: [{ lun: 0, device }], chap: options.chap, mutualChap: options.mutualChap });
  const { port } = await server.listen('127.0.0.1', 0);
  return {
    server,
    port,
    iqn,
    device,
    registry,
    url: (lun = 0, credentials = '') => `iscsi://${credentials}127.0.0.1:${port}/${iqn}/${lun}`,
    close: async () => {
      await server.close();
      await device.close();
    },
  };
}
