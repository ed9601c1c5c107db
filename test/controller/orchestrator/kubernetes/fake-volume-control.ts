import { TriremeError } from '../../../../src/common/errors';
import type { SnapshotView, VolumeStatusView } from '../../../../src/controller/management/volume-control';
import type { VolumeControlClient } from '../../../../src/controller/orchestrator/kubernetes';

/**
 * Stands in for a volume's controller pod, which cannot run without a cluster
 * (no pods are scheduled by the fake API server). It keeps the replica set,
 * size and snapshots the management API would, so the orchestrator's calls
 * can be checked; the management API itself is tested over real processes in
 * test/controller/management.
 */
export class FakeVolumeControl implements VolumeControlClient {
  replicas: string[] = [];
  sizeBytes = 0;
  snapshots: SnapshotView[] = [];
  readonly log: string[] = [];
  reachable = true;
  /** Replicas the controller has lost touch with: reported in ERR mode. */
  readonly down = new Set<string>();
  closed = false;

  constructor(readonly address: string) {}

  private check(): void {
    if (!this.reachable) throw new TriremeError('ERR_UNAVAILABLE', `controller at ${this.address} not answering`);
  }

  async status(): Promise<VolumeStatusView> {
    this.check();
    const replicas = this.replicas.map((address, i) => ({
      address,
      mode: this.down.has(address) ? ('ERR' as const) : i === this.replicas.length - 1 && this.log.some((l) => l === `add ${address}`) ? ('WO' as const) : ('RW' as const),
      error: '',
      rebuild: this.log.includes(`add ${address}`) ? { kind: 'full' as const, bytesDone: this.sizeBytes / 4, bytesTotal: this.sizeBytes, rateBytesPerSecond: 1, etaSeconds: 3 } : null,
    }));
    const rebuilding = replicas.some((r) => r.rebuild);
    return { volume: 'v', sizeBytes: this.sizeBytes, state: rebuilding ? 'rebuilding' : 'healthy', epoch: 1, seq: 1, replicas, iqn: '', portal: '', sessions: 0 };
  }

  async expand(sizeBytes: number): Promise<void> {
    this.check();
    this.log.push(`expand ${sizeBytes}`);
    this.sizeBytes = sizeBytes;
  }

  async createSnapshot(name: string): Promise<SnapshotView> {
    this.check();
    if (this.snapshots.some((s) => s.name === name)) throw new TriremeError('ERR_ALREADY_EXISTS', `snapshot ${name} exists`);
    const s = { name, seq: this.snapshots.length + 1, epoch: 1, createdAt: new Date().toISOString(), sizeBytes: this.sizeBytes };
    this.snapshots.push(s);
    return s;
  }

  async listSnapshots(): Promise<SnapshotView[]> {
    this.check();
    return [...this.snapshots];
  }

  async deleteSnapshot(name: string): Promise<void> {
    this.check();
    this.snapshots = this.snapshots.filter((s) => s.name !== name);
  }

  async addReplica(address: string): Promise<void> {
    this.check();
    this.log.push(`add ${address}`);
    this.replicas.push(address);
  }

  async removeReplica(address: string): Promise<void> {
    this.check();
    this.log.push(`remove ${address}`);
    this.replicas = this.replicas.filter((a) => a !== address);
  }

  close(): void {
    this.closed = true;
  }
}
