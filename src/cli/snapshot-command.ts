import type { Command } from 'commander';
import { formatSize } from '../common/size';
import type { SnapshotView } from '../controller/management/volume-control';
import { addDataOption, addJsonOption, runOperator } from './manager-connection';
import { renderTable } from './render';

export function renderSnapshots(volume: string, snapshots: SnapshotView[]): string {
  if (snapshots.length === 0) return `volume ${volume} has no snapshots`;
  return renderTable(
    ['snapshot', 'seq', 'epoch', 'created', 'size'],
    snapshots.map((s) => [s.name, s.seq, s.epoch, s.createdAt, formatSize(s.sizeBytes)]),
  );
}

/** `trireme snapshot create|ls|rm|revert VOLUME [NAME]`. */
export function registerSnapshotCommand(program: Command): Command {
  const snapshot = addDataOption(program.command('snapshot').description('manage snapshots of a volume of the standalone stack'));
  addJsonOption(snapshot.command('create <volume> <name>').description('take a snapshot (one seq on every RW replica)')).action(
    async (volume: string, name: string, _opts: unknown, cmd: Command) =>
      runOperator(cmd, (c) => c.createSnapshot(volume, name), (s) => `snapshot ${s.name} of ${volume} taken at seq ${s.seq}`),
  );
  addJsonOption(snapshot.command('ls <volume>').alias('list').description('list snapshots')).action(async (volume: string, _opts: unknown, cmd: Command) =>
    runOperator(cmd, (c) => c.listSnapshots(volume), (list) => renderSnapshots(volume, list)),
  );
  addJsonOption(snapshot.command('rm <volume> <name>').alias('delete').description('delete a snapshot and release its space')).action(
    async (volume: string, name: string, _opts: unknown, cmd: Command) =>
      runOperator(cmd, async (c) => {
        await c.deleteSnapshot(volume, name);
        return { volume, deleted: name };
      }, () => `snapshot ${name} of ${volume} deleted`),
  );
  addJsonOption(snapshot.command('revert <volume> <name>').description('make the volume hold the snapshot content again (no initiator may be logged in)')).action(
    async (volume: string, name: string, _opts: unknown, cmd: Command) =>
      runOperator(cmd, (c) => c.revertSnapshot(volume, name), () => `volume ${volume} reverted to snapshot ${name}`),
  );
  return snapshot;
}
