import { LinkErrorCode, ReplicaLinkError } from '../../../src/controller/engine/replica-link';
import { DEFAULT_MAX_PAYLOAD } from '../../../src/replica/wire/protocol';
import { ReplicaModelLink } from '../engine/sim/replica-model-link';
import { SimReplica } from '../engine/sim/sim-replica';

/**
 * A ReplicaLink straight onto the engine tests' in-memory replica model, on
 * the real clock. The management API tests exercise the real VolumeEngine
 * through it; the controller-process tests (test/cli) use real replica
 * processes over TCP instead. `down` makes the replica refuse like a killed
 * process, for the status and error-path checks.
 */
export class InProcessLink extends ReplicaModelLink {
  down = false;
  override readonly replica: SimReplica;

  constructor(
    override readonly id: string,
    size: number,
  ) {
    super();
    this.replica = new SimReplica(id, size);
  }

  protected override exec<T>(fn: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) =>
      setImmediate(() => {
        if (this.down) reject(new ReplicaLinkError(LinkErrorCode.Unreachable, this.id, 'connection refused'));
        else {
          try {
            resolve(fn());
          } catch (err) {
            reject(err);
          }
        }
      }),
    );
  }

  override write(epoch: number, seq: number, offset: number, data: Buffer, fua: boolean): Promise<void> {
    // The real data path refuses frames above its payload limit; so does this link.
    if (data.length > DEFAULT_MAX_PAYLOAD) return Promise.reject(new ReplicaLinkError(LinkErrorCode.OutOfRange, this.id, `payload of ${data.length} bytes over the frame limit`));
    const copy = Buffer.from(data);
    return this.exec(() => this.replica.write(epoch, seq, offset, copy, fua));
  }
  override unmap(epoch: number, seq: number, offset: number, length: number): Promise<void> {
    return this.exec(() => this.replica.unmap(epoch, seq, offset, length));
  }
  override flush(epoch: number): Promise<void> {
    return this.exec(() => this.replica.flush(epoch));
  }
  override read(offset: number, length: number, snapshot?: string): Promise<Buffer> {
    if (length > DEFAULT_MAX_PAYLOAD) return Promise.reject(new ReplicaLinkError(LinkErrorCode.OutOfRange, this.id, `read of ${length} bytes over the frame limit`));
    return this.exec(() => this.replica.read(offset, length, snapshot));
  }
  override ping(): Promise<void> {
    return this.exec(() => undefined);
  }
  protected override async *stream<T>(fetch: () => T[]): AsyncGenerator<T> {
    for (const item of await this.exec(fetch)) yield item;
  }
  override async close(): Promise<void> {}
}
