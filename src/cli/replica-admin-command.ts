import type { Command } from 'commander';
import { addDataOption, addJsonOption, runOperator } from './manager-connection';
import { renderVolumeStatus } from './volume-command';

/**
 * `trireme replica ls|add|rm VOLUME`: the operator side of `trireme replica`,
 * registered as sub-commands of the replica server's command so that
 * `trireme replica --dir DIR --listen HOST:PORT` keeps starting a server.
 */
export function registerReplicaAdminCommands(replica: Command): void {
  addDataOption(addJsonOption(replica.command('ls <volume>').alias('list').description('list the replicas of a volume with their modes'))).action(
    async (volume: string, _opts: unknown, cmd: Command) => runOperator(cmd, (c) => c.listReplicas(volume), renderVolumeStatus),
  );
  addDataOption(addJsonOption(replica.command('add <volume>').description('start one more replica for a volume; it rebuilds to RW'))).action(
    async (volume: string, _opts: unknown, cmd: Command) => runOperator(cmd, (c) => c.addReplica(volume), renderVolumeStatus),
  );
  addDataOption(addJsonOption(replica.command('rm <volume> <index>').alias('remove').description('remove a replica from a volume and delete its data'))).action(
    async (volume: string, index: string, _opts: unknown, cmd: Command) => runOperator(cmd, (c) => c.removeReplica(volume, Number(index)), renderVolumeStatus),
  );
}
