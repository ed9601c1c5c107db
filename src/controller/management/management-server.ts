import * as grpc from '@grpc/grpc-js';
import { InvalidArgumentError } from '../../common/errors';
import { parseHostPort } from '../../common/host-port';
import type { Logger } from '../../common/logger';
import { bindServer, loadProto, lookup, shutdownServer, unary } from './grpc-support';
import { SNAPSHOT_NAME, type VolumeControl } from './volume-control';

type ServiceClientCtor = grpc.ServiceClientConstructor;

let controllerService: grpc.ServiceDefinition | undefined;

/** The trireme.controller.v1.Controller service definition (loaded once). */
export function controllerServiceDefinition(): grpc.ServiceDefinition {
  controllerService ??= lookup<ServiceClientCtor>(loadProto('controller.proto'), 'trireme.controller.v1.Controller').service;
  return controllerService;
}

function snapshotName(name: unknown): string {
  if (typeof name !== 'string' || !SNAPSHOT_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid snapshot name "${String(name)}": 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit`);
  }
  return name;
}

function replicaAddress(address: unknown): string {
  if (typeof address !== 'string' || address === '') throw new InvalidArgumentError('replica address is required (HOST:PORT)');
  const { host, port } = parseHostPort(address);
  if (port === 0) throw new InvalidArgumentError(`invalid replica address "${address}": port 0`);
  return `${host}:${port}`;
}

/** The handlers: validation first, then the volume (abstract-level style). */
function handlers(control: VolumeControl, logger: Logger): grpc.UntypedServiceImplementation {
  return {
    getStatus: unary(logger, 'GetStatus', async () => control.status()),
    expand: unary(logger, 'Expand', async (req: { sizeBytes: number }) => {
      if (!Number.isSafeInteger(req.sizeBytes) || req.sizeBytes <= 0) throw new InvalidArgumentError('size_bytes must be a positive integer');
      await control.expand(req.sizeBytes);
      return control.status();
    }),
    createSnapshot: unary(logger, 'CreateSnapshot', async (req: { name: string }) => control.createSnapshot(snapshotName(req.name))),
    listSnapshots: unary(logger, 'ListSnapshots', async () => ({ snapshots: await control.listSnapshots() })),
    deleteSnapshot: unary(logger, 'DeleteSnapshot', async (req: { name: string }) => {
      await control.deleteSnapshot(snapshotName(req.name));
      return {};
    }),
    revertSnapshot: unary(logger, 'RevertSnapshot', async (req: { name: string }) => {
      await control.revertSnapshot(snapshotName(req.name));
      return control.status();
    }),
    addReplica: unary(logger, 'AddReplica', async (req: { address: string }) => {
      await control.addReplica(replicaAddress(req.address));
      return control.status();
    }),
    removeReplica: unary(logger, 'RemoveReplica', async (req: { address: string }) => {
      await control.removeReplica(replicaAddress(req.address));
      return control.status();
    }),
  };
}

/** The controller's management gRPC server (proto/controller.proto). */
export class ManagementServer {
  private readonly server = new grpc.Server();
  private port = 0;

  constructor(control: VolumeControl, logger: Logger) {
    this.server.addService(controllerServiceDefinition(), handlers(control, logger.child({ component: 'management' })));
  }

  /** Listens on HOST:PORT (port 0 picks a free one); returns the bound address. */
  async listen(host: string, port: number): Promise<{ host: string; port: number }> {
    const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
    this.port = await bindServer(this.server, address);
    return { host, port: this.port };
  }

  close(): Promise<void> {
    return shutdownServer(this.server);
  }
}
