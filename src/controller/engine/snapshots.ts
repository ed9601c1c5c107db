import { InvalidArgumentError, TriremeError, errorCode } from '../../common/errors';
import { BlockDeviceError } from '../../iscsi/block-device';
import type { SnapshotInfo } from '../../replica/store-types';
import { quorum } from './ack-policy';
import { LinkErrorCode } from './replica-link';
import type { ReplicaSet } from './replica-set';
import type { ReplicaSlot } from './replica-slot';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/** Snapshots the engine makes for itself (a full rebuild's fixed view of the source) start with a dot, which user names cannot. */
export const INTERNAL_PREFIX = '.rebuild-';

export function isInternalSnapshot(name: string): boolean {
  return name.startsWith('.');
}

export function checkSnapshotName(name: string): void {
  if (!NAME.test(name)) throw new InvalidArgumentError(`invalid snapshot name "${name}": 1-63 of A-Z a-z 0-9 . _ -, starting with a letter or digit`);
}

/**
 * Runs one snapshot operation on every replica in the write set and applies
 * the ack rule to it: replicas that fail leave the write set; the operation
 * succeeds only if at least a quorum of RW replicas did it. Codes listed in
 * `tolerated` (NOT_FOUND on a replica still catching up, say) count as done.
 */
async function onWriteSet(set: ReplicaSet, what: string, op: (slot: ReplicaSlot, epoch: number) => Promise<unknown>, tolerated: readonly string[] = []): Promise<void> {
  const epoch = set.epoch;
  const targets = set.slots.filter((s) => s.mode !== 'ERR').map((slot) => ({ slot, generation: slot.generation, mode: slot.mode }));
  const results = await Promise.all(
    targets.map((t) =>
      t.slot.call(what, () => op(t.slot, epoch)).then(
        () => undefined,
        (err: unknown) => err,
      ),
    ),
  );
  let rwDone = 0;
  let userError: unknown;
  results.forEach((err, i) => {
    const t = targets[i];
    const code = errorCode(err);
    if (err === undefined || (code !== undefined && tolerated.includes(code))) {
      if (t.mode === 'RW' && t.slot.mode === 'RW' && t.slot.generation === t.generation) rwDone++;
    } else if (code === LinkErrorCode.AlreadyExists || code === LinkErrorCode.NotFound) {
      userError ??= err;
      if (t.mode === 'WO') set.failed(t.slot, t.generation, err, what, epoch);
    } else {
      set.failed(t.slot, t.generation, err, what, epoch);
    }
  });
  if (set.fenced) throw new BlockDeviceError('unavailable', 'volume is owned by a newer controller');
  if (userError !== undefined && rwDone === 0) throw userError;
  if (rwDone < quorum(set.replicaCount)) throw new BlockDeviceError('unavailable', `${what} reached ${rwDone} replicas, fewer than a quorum`);
}

/** Waits until every earlier mutation has landed on each replica still in the write set. */
async function barrier(set: ReplicaSet): Promise<void> {
  await set.drained();
  await Promise.all(set.slots.filter((s) => s.mode !== 'ERR').map((s) => s.settledBelow(set.seq + 1, s.generation)));
}

/**
 * Snapshot operations (invariant 7). A snapshot is a barrier in the stream:
 * new mutations wait, earlier ones land everywhere, then every replica in the
 * write set cuts the snapshot at the same seq, so all hold the same content.
 */
export class SnapshotManager {
  constructor(
    private readonly set: ReplicaSet,
    private readonly attached: () => boolean,
  ) {}

  async create(name: string): Promise<SnapshotInfo> {
    checkSnapshotName(name);
    return this.set.pause(async () => {
      this.set.checkWritable();
      if ((await this.list()).some((s) => s.name === name)) throw new TriremeError(LinkErrorCode.AlreadyExists, `snapshot "${name}" already exists`);
      await barrier(this.set);
      this.set.checkWritable();
      const seq = this.set.seq;
      await onWriteSet(this.set, 'createSnapshot', (slot, epoch) => slot.link.createSnapshot(epoch, name, seq));
      const found = (await this.list()).find((s) => s.name === name);
      if (!found) throw new BlockDeviceError('unavailable', `snapshot "${name}" vanished after it was cut`);
      return found;
    });
  }

  async delete(name: string): Promise<void> {
    checkSnapshotName(name);
    await this.set.pause(async () => {
      this.set.checkWritable();
      if (!(await this.list()).some((s) => s.name === name)) throw new TriremeError(LinkErrorCode.NotFound, `snapshot "${name}" not found`);
      // A replica still catching up may not have received the snapshot yet;
      // its rebuild drops snapshots the source no longer has.
      await onWriteSet(this.set, 'deleteSnapshot', (slot, epoch) => slot.link.deleteSnapshot(epoch, name), [LinkErrorCode.NotFound]);
    });
  }

  async list(): Promise<SnapshotInfo[]> {
    const slot = this.set.slots.find((s) => s.mode === 'RW');
    if (!slot) throw new BlockDeviceError('unavailable', 'no replica in service');
    const generation = slot.generation;
    try {
      return (await slot.call('listSnapshots', () => slot.link.listSnapshots())).filter((s) => !isInternalSnapshot(s.name));
    } catch (err) {
      this.set.failed(slot, generation, err, 'listSnapshots');
      throw new BlockDeviceError('unavailable', 'listing snapshots failed', { cause: err });
    }
  }

  /**
   * The head becomes the snapshot's content. Only while no initiator is
   * attached (data would change under a mounted file system) and with no
   * rebuild running, so every replica in the write set reverts at one seq.
   */
  async revert(name: string): Promise<void> {
    checkSnapshotName(name);
    if (this.attached()) throw new TriremeError('ERR_BUSY', 'revert needs the volume detached from every initiator');
    await this.set.pause(async () => {
      this.set.checkWritable();
      if (this.set.count('WO') > 0) throw new TriremeError('ERR_BUSY', 'revert waits for running rebuilds to finish');
      if (!(await this.list()).some((s) => s.name === name)) throw new TriremeError(LinkErrorCode.NotFound, `snapshot "${name}" not found`);
      await barrier(this.set);
      this.set.checkWritable();
      const seq = ++this.set.seq;
      await onWriteSet(this.set, 'revert', (slot, epoch) => slot.link.revertToSnapshot(epoch, name, seq));
    });
  }
}
