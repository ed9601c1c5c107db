import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';
import { formatSize, parseSize } from '../common/size';
import type { VolumeMessage } from '../controller/manager/manager-client';
import { addDataOption, addJsonOption, runOperator } from './manager-connection';
import { formatDuration, renderRebuild, renderTable } from './render';

function processText(p: { state: string; pid: number; restarts: number; lastExit: string }): string {
  const restarts = p.restarts > 0 ? ` (${p.restarts} restarts, last ${p.lastExit})` : '';
  return `${p.state}${p.pid ? ` pid ${p.pid}` : ''}${restarts}`;
}

/** One line per volume for `trireme volume ls`. */
export function renderVolumeList(volumes: VolumeMessage[]): string {
  if (volumes.length === 0) return 'no volumes (create one with `trireme volume create NAME --size SIZE`)';
  const rows = volumes.map((v) => [v.name, formatSize(v.sizeBytes), v.status?.state ?? 'offline', `${v.replicaCount}`, v.portal, v.iqn]);
  return renderTable(['volume', 'size', 'state', 'replicas', 'portal', 'iqn'], rows);
}

/** `trireme volume status`: the volume, then its replicas with modes and rebuild progress. */
export function renderVolumeStatus(v: VolumeMessage): string {
  const s = v.status;
  const lines = [
    `volume ${v.name}  ${formatSize(v.sizeBytes)}  ${s ? s.state : 'offline'}${s ? `  epoch ${s.epoch}  seq ${s.seq}  sessions ${s.sessions}` : ''}`,
    `target ${v.iqn} on ${v.portal}   controller: ${processText(v.controller)}`,
  ];
  if (!s) lines.push(`controller not answering: ${v.statusError}`);
  const rows = v.replicas.map((r) => {
    const live = s?.replicas.find((x) => x.address === r.address);
    return [r.index, r.address, live?.mode ?? '-', processText(r.process), live?.rebuild ? renderRebuild(live.rebuild) : (live?.error ?? '')];
  });
  // A replica the controller serves but the manager has no record of (added by hand).
  for (const extra of s?.replicas.filter((x) => !v.replicas.some((r) => r.address === x.address)) ?? []) {
    rows.push(['-', extra.address, extra.mode, 'external', extra.rebuild ? renderRebuild(extra.rebuild) : extra.error]);
  }
  lines.push(renderTable(['#', 'replica', 'mode', 'process', 'rebuild / error'], rows));
  const eta = Math.max(-1, ...(s?.replicas.map((x) => x.rebuild?.etaSeconds ?? -1) ?? []));
  if (s?.state === 'rebuilding' && eta >= 0) lines.push(`rebuild finishes in about ${formatDuration(eta)}`);
  return lines.join('\n');
}

export function renderConnect(v: VolumeMessage): string {
  return [
    `volume ${v.name} (${formatSize(v.sizeBytes)}, ${v.replicaCount} replicas) on ${v.portal}`,
    `  iscsiadm -m discovery -t sendtargets -p ${v.portal}`,
    `  qemu-io -f raw -c 'read 0 4k' iscsi://${v.portal}/${v.iqn}/0`,
  ].join('\n');
}

function sizeArg(text: string): number {
  return parseSize(text);
}

/** `trireme volume create|ls|rm|expand|status`, talking to the manager of `trireme up`. */
export function registerVolumeCommand(program: Command): Command {
  const volume = addDataOption(program.command('volume').description('manage volumes of the standalone stack (`trireme up`)'));
  addJsonOption(
    volume
      .command('create <name>')
      .description('create a volume: one controller and N replica processes')
      .requiredOption('--size <size>', 'capacity, e.g. 10G', sizeArg)
      .option('--replicas <n>', 'number of replicas (1-5)', (t) => Number(t), 3),
  ).action(async (name: string, opts: { size: number; replicas: number }, cmd: Command) =>
    runOperator(cmd, (c) => c.createVolume(name, opts.size, opts.replicas), renderConnect),
  );
  addJsonOption(volume.command('ls').alias('list').description('list volumes')).action(async (_opts: unknown, cmd: Command) =>
    runOperator(cmd, (c) => c.listVolumes(), renderVolumeList),
  );
  addJsonOption(
    volume
      .command('status <name>')
      .description('state, replica modes, rebuild progress')
      .option('--watch [seconds]', 'refresh until interrupted (default every 2 s)'),
  ).action(async (name: string, opts: { watch?: string | boolean }, cmd: Command) => {
    const seconds = opts.watch === undefined ? undefined : opts.watch === true ? 2 : Number(opts.watch);
    if (seconds !== undefined && !(seconds > 0)) throw new InvalidArgumentError(`invalid --watch "${String(opts.watch)}": a number of seconds`);
    await runOperator(cmd, (c) => c.getVolume(name), renderVolumeStatus, seconds);
  });
  addJsonOption(volume.command('expand <name>').description('grow a volume online').requiredOption('--size <size>', 'new capacity, e.g. 20G', sizeArg)).action(
    async (name: string, opts: { size: number }, cmd: Command) => runOperator(cmd, (c) => c.expandVolume(name, opts.size), (v) => `volume ${v.name} is now ${formatSize(v.sizeBytes)}`),
  );
  addJsonOption(volume.command('rm <name>').alias('delete').description('stop a volume and delete its data')).action(async (name: string, _opts: unknown, cmd: Command) =>
    runOperator(cmd, async (c) => {
        await c.deleteVolume(name);
        return { deleted: name };
      }, () => `volume ${name} deleted`),
  );
  return volume;
}
