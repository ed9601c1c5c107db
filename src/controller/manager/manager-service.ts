import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import { bindServer, loadProto, lookup, shutdownServer, unary } from '../management/grpc-support';
import { SNAPSHOT_NAME } from '../management/volume-control';
import type { LocalOrchestrator, VolumeDescription } from '../orchestrator/local-orchestrator';

let ctor: grpc.ServiceClientConstructor | undefined;

/** The trireme.manager.v1.Manager service constructor (loaded once). */
export function managerServiceClient(): grpc.ServiceClientConstructor {
  ctor ??= lookup<grpc.ServiceClientConstructor>(loadProto('manager.proto'), 'trireme.manager.v1.Manager');
  return ctor;
}

/** A VolumeDescription as the proto's Volume message. */
export function toVolumeMessage(d: VolumeDescription): Record<string, unknown> {
  return {
    name: d.record.name,
    sizeBytes: d.record.sizeBytes,
    replicaCount: d.record.replicas.length,
    iqn: d.record.iqn,
    portal: d.portal,
    management: d.management,
    metrics: d.metrics,
    createdAt: d.record.createdAt,
    controller: d.controller,
    replicas: d.replicas.map((r) => ({ index: r.index, address: r.address, dataDir: r.dataDir, process: r.process })),
    status: d.status,
    statusError: d.statusError,
  };
}

function snapshotName(name: unknown): string {
  if (typeof name !== 'string' || !SNAPSHOT_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid snapshot name "${String(name)}": 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return name;
}

function handlers(o: LocalOrchestrator, logger: Logger): grpc.UntypedServiceImplementation {
  type Named = { name: string };
  type Snap = { volume: string; name: string };
  return {
    createVolume: unary(logger, 'CreateVolume', async (r: Named & { sizeBytes: number; replicaCount: number }) =>
      toVolumeMessage(await o.createVolume({ name: r.name, sizeBytes: r.sizeBytes, replicaCount: r.replicaCount })),
    ),
    listVolumes: unary(logger, 'ListVolumes', async () => {
      const records = await o.listVolumes();
      return { volumes: (await Promise.all(records.map((r) => o.describe(r.name).catch(() => undefined)))).filter((d) => d !== undefined).map(toVolumeMessage) };
    }),
    getVolume: unary(logger, 'GetVolume', async (r: Named) => toVolumeMessage(await o.describe(r.name))),
    deleteVolume: unary(logger, 'DeleteVolume', async (r: Named) => {
      await o.deleteVolume(r.name);
      return {};
    }),
    expandVolume: unary(logger, 'ExpandVolume', async (r: Named & { sizeBytes: number }) => toVolumeMessage(await o.expandVolume(r.name, r.sizeBytes))),
    createSnapshot: unary(logger, 'CreateSnapshot', async (r: Snap) => o.createSnapshot(r.volume, snapshotName(r.name))),
    listSnapshots: unary(logger, 'ListSnapshots', async (r: Named) => ({ snapshots: await o.listSnapshots(r.name) })),
    deleteSnapshot: unary(logger, 'DeleteSnapshot', async (r: Snap) => {
      await o.deleteSnapshot(r.volume, snapshotName(r.name));
      return {};
    }),
    revertSnapshot: unary(logger, 'RevertSnapshot', async (r: Snap) => toVolumeMessage(await o.revertSnapshot(r.volume, snapshotName(r.name)))),
    listReplicas: unary(logger, 'ListReplicas', async (r: Named) => toVolumeMessage(await o.describe(r.name))),
    addReplica: unary(logger, 'AddReplica', async (r: Named) => toVolumeMessage(await o.addReplica(r.name))),
    removeReplica: unary(logger, 'RemoveReplica', async (r: { volume: string; index: number }) => toVolumeMessage(await o.removeReplica(r.volume, r.index))),
  };
}

/** The manager API (proto/manager.proto) over the local orchestrator. */
export class ManagerServer {
  private readonly server = new grpc.Server();

  constructor(orchestrator: LocalOrchestrator, logger: Logger) {
    this.server.addService(managerServiceClient().service, handlers(orchestrator, logger.child({ component: 'manager-api' })));
  }

  /** Listens on a gRPC address such as `unix:///path/manager.sock` or `127.0.0.1:0`. */
  listen(address: string): Promise<number> {
    return bindServer(this.server, address);
  }

  close(): Promise<void> {
    return shutdownServer(this.server);
  }
}
