import { LinkErrorCode, ReplicaLinkError } from '../../../../src/controller/engine/replica-link';
import type { Rng, SimClock } from './sim-clock';
import { ReplicaModelLink } from './replica-model-link';
import type { SimReplica } from './sim-replica';

/** Faults that belong to the network between the engine and one replica process. */
export interface LinkFaults {
  /** Requests and replies are held; when healed they fail as a reset connection would. */
  partitioned: boolean;
}

interface Held {
  readonly reject: (err: Error) => void;
}

/**
 * One ordered connection from an engine to a SimReplica over the virtual
 * clock. Requests arrive in the order sent, after a random latency; replies
 * come back the same way. A crashed replica refuses (ERR_UNREACHABLE); a
 * stopped one (SIGSTOP) holds requests and serves them in order when resumed;
 * a partition holds everything and resets when healed.
 */
export class SimLink extends ReplicaModelLink {
  readonly faults: LinkFaults = { partitioned: false };
  /** Every (seq) stamped on this link by write/unmap, in send order: invariant 2 is checked on it. */
  readonly sentSeqs: number[] = [];
  private arriveTail = 0;
  private replyTail = 0;
  private held: Held[] = [];
  private closed = false;
  /** The data connection broke (process gone, reset); mutations fail until ping() reconnects. */
  private lost = false;
  private incarnation: number;

  constructor(
    override readonly replica: SimReplica,
    private readonly clock: SimClock,
    private readonly rng: Rng,
    private readonly latency: [number, number] = [1, 8],
  ) {
    super();
    this.incarnation = replica.incarnation;
  }

  override get id(): string {
    return this.replica.id;
  }

  /** Fails every held request, as a reset connection does, and carries on. */
  heal(): void {
    if (this.held.length > 0) this.lost = true;
    this.faults.partitioned = false;
    const held = this.held;
    this.held = [];
    for (const h of held) h.reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'connection reset'));
  }

  /**
   * `connection`: 'data' requests travel on the ordered data connection and
   * never reopen it (a restarted replica must not receive seq 12 after missing
   * 2-11); 'reconnect' (ping) reopens it; 'control' is the gRPC channel, which
   * reconnects by itself.
   */
  protected override exec<T>(fn: () => T, connection: 'data' | 'reconnect' | 'control' = 'control'): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.closed || (connection === 'data' && this.lost)) {
        reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, this.closed ? 'link closed' : 'connection lost'));
        return;
      }
      const arrive = Math.max(this.arriveTail, this.clock.now() + this.rng.between(this.latency[0], this.latency[1]));
      this.arriveTail = arrive;
      const reply = (outcome: () => void): void => {
        const at = Math.max(this.replyTail, this.clock.now() + this.rng.between(this.latency[0], this.latency[1]));
        this.replyTail = at;
        this.clock.setTimer(at - this.clock.now(), () => {
          if (this.faults.partitioned) this.held.push({ reject });
          else outcome();
        });
      };
      const serve = (): void => {
        if (connection === 'reconnect' && this.replica.up) {
          this.incarnation = this.replica.incarnation;
          this.lost = false;
        }
        if (connection === 'data' && (this.lost || this.incarnation !== this.replica.incarnation)) this.lost = true;
        if (!this.replica.up || (connection === 'data' && this.lost)) {
          if (connection !== 'control') this.lost = true;
          reply(() => reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'connection refused')));
          return;
        }
        try {
          const value = fn();
          reply(() => resolve(value));
        } catch (err) {
          reply(() => reject(err as Error));
        }
      };
      this.clock.setTimer(arrive - this.clock.now(), () => {
        if (this.faults.partitioned) this.held.push({ reject });
        else if (this.replica.up && this.replica.stalled) this.replica.stallQueue.push(serve);
        else serve();
      });
    });
  }

  override write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void> {
    this.sentSeqs.push(seq);
    const copy = Buffer.from(data);
    return this.exec(() => this.replica.write(epoch, seq, offset, copy, fua), 'data');
  }

  override unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    this.sentSeqs.push(seq);
    return this.exec(() => this.replica.unmap(epoch, seq, offset, length), 'data');
  }

  override flush(epoch: number): Promise<void> {
    return this.exec(() => this.replica.flush(epoch), 'data');
  }

  override read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    return this.exec(() => this.replica.read(offset, length, snapshot), 'reconnect');
  }

  override ping(): Promise<void> {
    return this.exec(() => undefined, 'reconnect');
  }










  /** Streams a list fetched once, a few items per round trip, each one subject to faults. */
  protected override async *stream<T>(fetch: () => T[]): AsyncGenerator<T> {
    const items = await this.exec(fetch);
    for (let i = 0; i < items.length; i += 4) {
      const batch = await this.exec(() => items.slice(i, i + 4));
      yield* batch;
    }
  }






  override async close(): Promise<void> {
    this.closed = true;
    this.heal();
  }
}
