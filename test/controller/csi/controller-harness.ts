import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { identityService, startCsiServer, type RunningCsiServer } from '../../../src/common/csi';
import { silentLogger } from '../../../src/common/logger';
import { controllerService } from '../../../src/controller/csi';
import { CsiTestClient } from '../../node/support/csi-client';
import { MemoryOrchestrator } from './memory-orchestrator';

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export interface ControllerPlugin {
  readonly client: CsiTestClient;
  readonly orchestrator: MemoryOrchestrator;
  readonly server: RunningCsiServer;
  close(): Promise<void>;
}

/** Identity + controller services over a real unix socket, on a 100 GiB in-memory pool. */
export async function startControllerPlugin(): Promise<ControllerPlugin> {
  const dir = mkdtempSync(join(tmpdir(), 'trireme-csi-ctl-'));
  const logger = silentLogger();
  const orchestrator = new MemoryOrchestrator(100 * GiB, 16 * GiB);
  const server = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: '0.0.0-test', controllerService: true, readinessChecks: [{ name: 'orchestrator', check: () => orchestrator.ready() }], logger }),
    controller: controllerService(orchestrator),
    logger,
  });
  const client = new CsiTestClient(server.socketPath);
  return {
    client,
    orchestrator,
    server,
    async close() {
      client.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const mountCap = { mount: { fs_type: 'ext4' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
export const blockCap = { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

export interface CsiVolume {
  capacity_bytes: number;
  volume_id: string;
  volume_context: Record<string, string>;
  content_source: { snapshot?: { snapshot_id: string } | null; volume?: { volume_id: string } | null } | null;
}

export interface CsiSnapshot {
  size_bytes: number;
  snapshot_id: string;
  source_volume_id: string;
  creation_time: { seconds: number; nanos: number };
  ready_to_use: boolean;
}
