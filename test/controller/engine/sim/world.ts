import { Registry } from 'prom-client';
import { createRootLogger, silentLogger } from '../../../../src/common/logger';
import type { EngineTuning } from '../../../../src/controller/engine/engine-config';
import { VolumeEngine } from '../../../../src/controller/engine/volume-engine';
import { Rng, SimClock } from './sim-clock';
import { SimLink } from './sim-link';
import { SIM_BLOCK, SimReplica } from './sim-replica';

export const SIM_TUNING: Partial<EngineTuning> = { opTimeoutMs: 2000, probeIntervalMs: 300, rebuildBytesPerSecond: 0, openTimeoutMs: 20_000 };

/** Replicas, a virtual clock and the links of every engine opened over them. */
export class World {
  readonly clock = new SimClock();
  readonly rng: Rng;
  readonly replicas: SimReplica[];
  readonly registry = new Registry();
  readonly links = new Map<VolumeEngine, SimLink[]>();

  constructor(
    seed: number,
    count: number,
    readonly blocks = 32,
    readonly latency: [number, number] = [1, 8],
  ) {
    this.rng = new Rng(seed);
    this.replicas = Array.from({ length: count }, (_, i) => new SimReplica(`r${i + 1}`, blocks * SIM_BLOCK));
  }

  /** Starts opening an engine over fresh links to every replica (a controller start). */
  openEngine(tuning: Partial<EngineTuning> = {}, attached?: () => boolean): Promise<VolumeEngine> {
    const links = this.replicas.map((r) => new SimLink(r, this.clock, this.rng, this.latency));
    // TRIREME_SIM_LOG=debug shows the engine's log of a replayed schedule.
    const logger = process.env.TRIREME_SIM_LOG ? createRootLogger({ level: process.env.TRIREME_SIM_LOG }) : silentLogger();
    const opening = VolumeEngine.open({ volumeId: 'vol-sim', links, logger, registry: this.registry, clock: this.clock, tuning: { ...SIM_TUNING, ...tuning }, attached });
    void opening.then(
      (engine) => this.links.set(engine, links),
      () => undefined,
    );
    return opening;
  }

  /** Runs virtual time until `promise` settles. */
  run<T>(promise: Promise<T>, maxMs = 60_000): Promise<T> {
    return this.clock.run(promise, maxMs);
  }

  async open(tuning: Partial<EngineTuning> = {}, attached?: () => boolean): Promise<VolumeEngine> {
    return this.run(this.openEngine(tuning, attached));
  }

  /** Runs virtual time until every replica is RW (the engine healed), or throws. */
  async healthy(engine: VolumeEngine, maxMs = 60_000): Promise<void> {
    const ok = await this.clock.runUntil(() => engine.status().replicas.every((r) => r.mode === 'RW'), maxMs);
    if (!ok) throw new Error(`engine did not heal: ${JSON.stringify(engine.status())}`);
  }

  linksOf(engine: VolumeEngine): SimLink[] {
    const links = this.links.get(engine);
    if (!links) throw new Error('unknown engine');
    return links;
  }

  /** Heals every fault: processes restarted and resumed, links reconnected. */
  healAll(): void {
    for (const r of this.replicas) {
      r.restart();
      r.resume();
    }
    for (const links of this.links.values()) for (const link of links) link.heal();
  }
}

/** One block of data that names the write that produced it. */
export function pattern(tag: number, block: number): Buffer {
  const buf = Buffer.alloc(SIM_BLOCK, tag & 0xff);
  buf.writeUInt32LE(tag, 0);
  buf.writeUInt32LE(block, 4);
  return buf;
}

const ZERO = Buffer.alloc(SIM_BLOCK);
const FILLS = Array.from({ length: 256 }, (_, i) => Buffer.alloc(SIM_BLOCK - 8, i));

/** The tag of a block written by pattern(), 0 for zeros; throws on anything else. */
export function tagOf(buf: Buffer, block: number): number {
  const tag = buf.readUInt32LE(0);
  const ok = tag === 0 ? buf.equals(ZERO) : buf.readUInt32LE(4) === block && buf.subarray(8).equals(FILLS[tag & 0xff]);
  if (!ok) throw new Error(`block ${block} holds data no write produced`);
  return tag;
}
