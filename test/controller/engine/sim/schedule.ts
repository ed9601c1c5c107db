import { quorum } from '../../../../src/controller/engine/ack-policy';
import type { EngineTuning } from '../../../../src/controller/engine/engine-config';
import type { VolumeEngine } from '../../../../src/controller/engine/volume-engine';
import { Oracle } from './oracle';
import { Rng } from './sim-clock';
import { SIM_BLOCK, type SimReplica } from './sim-replica';
import { World, pattern, tagOf } from './world';

const BLOCKS = 16;

export interface ScheduleStats {
  acked: number;
  failed: number;
  reads: number;
  controllerRestarts: number;
  staleWrites: number;
}

type Action = 'write' | 'unmap' | 'read' | 'flush' | 'snapshot' | 'delete-snapshot' | 'crash' | 'restart' | 'stop' | 'resume' | 'partition' | 'heal' | 'compact' | 'controller' | 'stale-write' | 'resize';

const WEIGHTS: Array<[Action, number]> = [
  ['write', 30],
  ['unmap', 4],
  ['read', 12],
  ['flush', 4],
  ['snapshot', 2],
  ['delete-snapshot', 1],
  ['crash', 3],
  ['restart', 4],
  ['stop', 2],
  ['resume', 3],
  ['partition', 2],
  ['heal', 3],
  ['compact', 1],
  ['controller', 2],
  ['stale-write', 2],
  ['resize', 1],
];

function pickAction(rng: Rng): Action {
  const total = WEIGHTS.reduce((a, [, w]) => a + w, 0);
  let roll = rng.int(total);
  for (const [action, weight] of WEIGHTS) {
    if (roll < weight) return action;
    roll -= weight;
  }
  return 'write';
}

function fail(seed: number, message: string): never {
  throw new Error(`seed ${seed}: ${message}`);
}

/**
 * One seeded schedule: random I/O against the newest engine while replicas
 * crash, stop, lose their links, get compacted and the controller restarts;
 * the replication invariants are checked after every step and at the end.
 */
export class Schedule {
  private readonly world: World;
  private readonly rng: Rng;
  private readonly oracle = new Oracle(BLOCKS);
  private readonly pending = new Set<Promise<unknown>>();
  private readonly snapshotNames: string[] = [];
  private engine!: VolumeEngine;
  private readonly old: Array<{ engine: VolumeEngine; fencedAfter: number }> = [];
  private readonly closedEngines = new Set<VolumeEngine>();
  private gid = 0;
  private snapCount = 0;
  readonly stats: ScheduleStats = { acked: 0, failed: 0, reads: 0, controllerRestarts: 0, staleWrites: 0 };

  /** Some schedules throttle rebuilds so the copy overlaps many writes, snapshots and faults. */
  private readonly tuning: Partial<EngineTuning>;

  constructor(private readonly seed: number) {
    this.rng = new Rng(seed ^ 0x5eed);
    const count = this.rng.pick([1, 2, 3, 3, 3, 3, 4, 5]);
    this.tuning = { rebuildBytesPerSecond: this.rng.pick([0, 0, 16 * SIM_BLOCK, 64 * SIM_BLOCK]) };
    this.world = new World(seed, count, BLOCKS, [1, 12]);
  }

  private track(promise: Promise<unknown>): void {
    const tracked = promise.catch(() => undefined).finally(() => this.pending.delete(tracked));
    this.pending.add(tracked);
  }

  private rwReplicas(): SimReplica[] {
    const modes = this.engine.status().replicas;
    return this.world.replicas.filter((_, i) => modes[i].mode === 'RW');
  }

  async run(steps: number): Promise<ScheduleStats> {
    try {
      return await this.steps(steps);
    } catch (err) {
      const message = (err as Error).message;
      throw new Error(message.startsWith(`seed ${this.seed}:`) ? message : `seed ${this.seed}: ${message}`, { cause: err });
    }
  }

  private async steps(steps: number): Promise<ScheduleStats> {
    this.engine = await this.world.open(this.tuning);
    for (let step = 0; step < steps; step++) {
      await this.act(pickAction(this.rng));
      await this.world.clock.advance(this.rng.between(0, 250));
      this.checkContent(`after step ${step}`);
    }
    await this.finish();
    return this.stats;
  }

  private async act(action: Action): Promise<void> {
    const replicas = this.world.replicas;
    const links = this.world.linksOf(this.engine);
    switch (action) {
      case 'write':
      case 'unmap':
        return this.mutate(action === 'unmap');
      case 'read':
        return this.read();
      case 'flush':
        return this.flush();
      case 'snapshot':
        return this.snapshot();
      case 'delete-snapshot': {
        if (this.snapshotNames.length === 0) return;
        const name = this.snapshotNames.splice(this.rng.int(this.snapshotNames.length), 1)[0];
        this.track(this.engine.snapshots.delete(name));
        return;
      }
      case 'crash':
        this.rng.pick(replicas).crash();
        return;
      case 'restart':
        this.rng.pick(replicas).restart();
        return;
      case 'stop':
        this.rng.pick(replicas).stop();
        return;
      case 'resume':
        this.rng.pick(replicas).resume();
        return;
      case 'partition':
        this.rng.pick(links).faults.partitioned = true;
        return;
      case 'heal':
        this.rng.pick(links).heal();
        return;
      case 'compact':
        this.rng.pick(replicas).compact();
        return;
      case 'controller':
        return this.restartController();
      case 'resize':
        // Grows past the blocks the schedule writes; every replica must follow, rebuilt ones included.
        this.track(this.engine.resize(this.engine.size() + 4 * SIM_BLOCK));
        return;
      case 'stale-write': {
        // A lingering old controller keeps sending writes: every one must fail (invariant 3).
        const lingering = this.old.filter((o) => !this.closedEngines.has(o.engine));
        if (lingering.length === 0) return;
        this.stats.staleWrites++;
        this.mutate(false, this.rng.pick(lingering).engine);
        return;
      }
    }
  }

  private mutate(unmap: boolean, engine = this.engine): void {
    const first = this.rng.int(BLOCKS);
    const count = Math.min(this.rng.between(1, 3), BLOCKS - first);
    const gid = ++this.gid;
    const tag = unmap ? 0 : gid;
    this.oracle.issue(gid, first, count, tag);
    const op = unmap
      ? engine.unmap(first * SIM_BLOCK, count * SIM_BLOCK)
      : engine.write(
          first * SIM_BLOCK,
          Buffer.concat(Array.from({ length: count }, (_, i) => pattern(gid, first + i))),
          { fua: this.rng.chance(0.1) },
        );
    this.track(
      op.then(
        () => {
          this.oracle.settle(gid, true);
          this.stats.acked++;
          this.checkAckQuorum(engine, gid, first, tag);
          const fenced = this.old.find((o) => o.engine === engine);
          if (fenced && gid > fenced.fencedAfter) fail(this.seed, `write ${gid} acknowledged by an engine fenced by a newer controller`);
        },
        () => {
          this.oracle.settle(gid, false);
          this.stats.failed++;
        },
      ),
    );
  }

  /** Invariant 1: at the ack, a quorum of replicas hold the write. */
  private checkAckQuorum(engine: VolumeEngine, gid: number, block: number, tag: number): void {
    if (tag === 0) return;
    const holders = this.world.replicas.filter((r) => (r.blocks.get(block) ?? []).some((v) => v.data !== null && v.data.readUInt32LE(0) === gid)).length;
    const need = quorum(this.world.replicas.length);
    if (holders < need) fail(this.seed, `write ${gid} acknowledged with ${holders} replicas holding it, quorum ${need} (${JSON.stringify(engine.status())})`);
  }

  private read(): void {
    const first = this.rng.int(BLOCKS);
    const count = Math.min(this.rng.between(1, 4), BLOCKS - first);
    const since = Array.from({ length: count }, (_, i) => this.oracle.latestAcked(first + i));
    const engine = this.engine;
    this.track(
      engine.read(first * SIM_BLOCK, count * SIM_BLOCK).then(
        (data) => {
          if (engine !== this.engine) return;
          this.stats.reads++;
          for (let i = 0; i < count; i++) {
            const tag = this.tagAt(data.subarray(i * SIM_BLOCK, (i + 1) * SIM_BLOCK), first + i, 'engine read');
            if (!this.oracle.allowed(first + i, since[i]).has(tag)) fail(this.seed, `read of block ${first + i} returned write ${tag}, newest acknowledged was ${since[i]}`);
          }
        },
        () => undefined,
      ),
    );
  }

  private tagAt(buf: Buffer, block: number, where: string): number {
    try {
      return tagOf(buf, block);
    } catch (err) {
      fail(this.seed, `${where}: ${(err as Error).message}`);
    }
  }

  /** Invariant 8: at a flush's ack every replica in RW throughout has made stable all it had. */
  private flush(): void {
    const engine = this.engine;
    const seq = engine.status().seq;
    const before = new Set(this.rwReplicas());
    this.track(
      engine.flush().then(
        () => {
          if (engine !== this.engine) return;
          for (const r of this.rwReplicas()) {
            if (before.has(r) && r.durableSeq < Math.min(seq, r.lastSeq)) fail(this.seed, `flush acknowledged but ${r.id} is durable only to ${r.durableSeq} < ${seq}`);
          }
        },
        () => undefined,
      ),
    );
  }

  private snapshot(): void {
    const name = `s${++this.snapCount}`;
    const engine = this.engine;
    this.track(
      engine.snapshots.create(name).then(
        () => {
          this.snapshotNames.push(name);
          if (engine === this.engine) this.checkSnapshots(`snapshot ${name} cut`);
        },
        () => undefined,
      ),
    );
  }

  private async restartController(): Promise<void> {
    this.stats.controllerRestarts++;
    const previous = this.engine;
    let next: VolumeEngine;
    try {
      next = await this.world.run(this.world.openEngine(this.tuning), 40_000);
    } catch {
      // No quorum reachable under the current faults (open gave up after its
      // timeout): heal them and start again.
      this.world.healAll();
      next = await this.world.run(this.world.openEngine(this.tuning), 40_000);
    }
    this.old.push({ engine: previous, fencedAfter: this.gid });
    this.engine = next;
    // Sometimes the old controller lingers (a partitioned pod), sometimes it is gone.
    if (this.rng.chance(0.5)) {
      this.closedEngines.add(previous);
      this.track(previous.close());
    }
  }

  /** Every RW replica holds, per block, a value the oracle allows (the newest acknowledged or later). */
  private checkContent(when: string): void {
    for (const r of this.rwReplicas()) {
      for (let b = 0; b < BLOCKS; b++) {
        const tag = this.tagAt(r.valueAt(b) ?? Buffer.alloc(SIM_BLOCK), b, `${r.id} ${when}`);
        if (!this.oracle.allowed(b).has(tag)) fail(this.seed, `${when}: ${r.id} (RW) holds write ${tag} in block ${b}, newest acknowledged is ${this.oracle.latestAcked(b)}`);
      }
    }
  }

  /** Invariant 7: every RW replica holds the same snapshots with the same content. */
  private checkSnapshots(when: string): void {
    const rw = this.rwReplicas();
    if (rw.length === 0) return;
    const [first, ...rest] = rw;
    for (const r of rest) {
      for (const snap of first.listSnapshots()) {
        const other = r.snapshots.get(snap.name);
        if (!other || other.seq !== snap.seq) continue;
        for (let b = 0; b < BLOCKS; b++) {
          if (!first.read(b * SIM_BLOCK, SIM_BLOCK, snap.name).equals(r.read(b * SIM_BLOCK, SIM_BLOCK, snap.name))) fail(this.seed, `${when}: snapshot ${snap.name} differs in block ${b} between ${first.id} and ${r.id}`);
        }
      }
    }
  }

  /** Runs until every replica is RW, starting a fresh engine if the newest one stood down. */
  private async heal(): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      if (this.engine.status().fenced) {
        this.old.push({ engine: this.engine, fencedAfter: this.gid });
        this.engine = await this.world.run(this.world.openEngine(this.tuning), 40_000);
      }
      const engine = this.engine;
      const settled = await this.world.clock.runUntil(() => engine.status().fenced || engine.status().replicas.every((r) => r.mode === 'RW'), 120_000);
      if (settled && !engine.status().fenced) break;
      if (!settled || attempt >= 3) fail(this.seed, `engine did not heal: ${JSON.stringify(engine.status())}`);
    }
  }

  /** Heal everything, let the engine catch every replica up, then compare them all. */
  private async finish(): Promise<void> {
    this.world.healAll();
    if (!(await this.world.clock.runUntil(() => this.pending.size === 0, 120_000))) fail(this.seed, 'operations still pending after healing');
    // The newest engine may stand down (it saw an epoch above its own, maybe
    // from its own failed recovery): the orchestrator starts a fresh one.
    // Twice, a few heartbeats apart: a replica restarted while its slot sat
    // idle in RW is noticed (and rebuilt) only at the next heartbeat.
    await this.heal();
    await this.world.clock.advance(3000);
    await this.heal();
    this.checkContent('at the end');
    const [first, ...rest] = this.world.replicas;
    for (const r of rest) {
      for (let b = 0; b < BLOCKS; b++) {
        if (!first.read(b * SIM_BLOCK, SIM_BLOCK).equals(r.read(b * SIM_BLOCK, SIM_BLOCK))) fail(this.seed, `block ${b} differs between ${first.id} and ${r.id} after rebuild`);
      }
      const names = (x: SimReplica): string =>
        x
          .listSnapshots()
          .filter((s) => !s.name.startsWith('.'))
          .map((s) => `${s.name}@${s.seq}`)
          .sort()
          .join(',');
      if (names(first) !== names(r)) fail(this.seed, `snapshots differ: ${first.id} [${names(first)}] ${r.id} [${names(r)}]`);
    }
    this.checkSnapshots('at the end');
    // A replica may be larger than the volume when a resize failed after reaching it; never smaller.
    for (const r of this.world.replicas) if (r.size < this.engine.size()) fail(this.seed, `${r.id} has size ${r.size}, the volume ${this.engine.size()}`);
    for (const link of this.world.links.values()) {
      for (const l of link) {
        for (let i = 1; i < l.sentSeqs.length; i++) if (l.sentSeqs[i] <= l.sentSeqs[i - 1]) fail(this.seed, `seq ${l.sentSeqs[i]} sent after ${l.sentSeqs[i - 1]} to ${l.id}`);
      }
    }
    // The healed volume takes writes and reads them back.
    const gid = ++this.gid;
    await this.world.run(this.engine.write(0, pattern(gid, 0)));
    const back = await this.world.run(this.engine.read(0, SIM_BLOCK));
    if (!back.equals(pattern(gid, 0))) fail(this.seed, 'final write not read back');
    for (const o of this.old) this.track(o.engine.close());
    await this.world.run(this.engine.close());
  }
}
