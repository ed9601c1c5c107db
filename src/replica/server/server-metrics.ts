import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ReplicaStore } from '../store-types';
import { OPCODE_NAMES, STATUS_CODES, Status } from '../wire/protocol';

/** Latency buckets from 50 µs (a page-cache append) to 2.5 s (a stalled fsync). */
const LATENCY_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

/** The replica server's metrics (STYLE.md rule 7); the store registers its own (fsync latency, segments). */
export class ServerMetrics {
  readonly ops: Counter<'op' | 'status'>;
  readonly bytes: Counter<'op'>;
  readonly latency: Histogram<'op'>;
  readonly inflightRequests: Gauge;
  readonly inflightBytes: Gauge;
  readonly connections: Gauge;
  readonly connectionsAccepted: Counter;
  readonly protocolErrors: Counter<'code'>;
  readonly controlCalls: Counter<'method' | 'code'>;

  /**
   * Label children resolved once per (opcode, status), keyed by a number: the
   * hot path builds no label object and no string (a template-string key
   * per request showed up in replica profiles).
   */
  private readonly children = new Map<number, { ops: Counter.Internal; latency: Histogram.Internal<'op'>; bytes: Counter.Internal }>();

  /** Records one served data-path request by its wire opcode and status. */
  recordOp(opcode: number, status: number, seconds: number, bytes: number): void {
    const key = opcode * 0x10000 + status;
    let child = this.children.get(key);
    if (child === undefined) {
      const op = OPCODE_NAMES[opcode] ?? 'unknown';
      const result = status === Status.Ok ? 'ok' : (STATUS_CODES[status] ?? 'ERR_INTERNAL');
      child = { ops: this.ops.labels(op, result), latency: this.latency.labels(op), bytes: this.bytes.labels(op) };
      this.children.set(key, child);
    }
    child.ops.inc();
    child.latency.observe(seconds);
    if (bytes > 0) child.bytes.inc(bytes);
  }

  constructor(registry: Registry, store: ReplicaStore) {
    const registers = [registry];
    this.ops = new Counter({ name: 'trireme_replica_ops_total', help: 'Data-path requests served, by opcode and status', labelNames: ['op', 'status'], registers });
    this.bytes = new Counter({ name: 'trireme_replica_io_bytes_total', help: 'Payload bytes written or read on the data path', labelNames: ['op'], registers });
    this.latency = new Histogram({ name: 'trireme_replica_op_seconds', help: 'Data-path request latency inside the replica', labelNames: ['op'], buckets: LATENCY_BUCKETS, registers });
    this.inflightRequests = new Gauge({ name: 'trireme_replica_inflight_requests', help: 'Data-path requests being served', registers });
    this.inflightBytes = new Gauge({ name: 'trireme_replica_inflight_bytes', help: 'Payload bytes held by requests being served', registers });
    this.connections = new Gauge({ name: 'trireme_replica_connections', help: 'Open connections on the data port (data path and handed-over control)', registers });
    this.connectionsAccepted = new Counter({ name: 'trireme_replica_connections_total', help: 'Data-path connections accepted', registers });
    this.protocolErrors = new Counter({ name: 'trireme_replica_protocol_errors_total', help: 'Connections closed for a protocol fault', labelNames: ['code'], registers });
    this.controlCalls = new Counter({ name: 'trireme_replica_control_calls_total', help: 'gRPC control calls, by method and outcome code', labelNames: ['method', 'code'], registers });
    const info = (): ReturnType<ReplicaStore['info']> => store.info();
    new Gauge({ name: 'trireme_replica_epoch', help: 'Current epoch of the replica', registers, collect() { this.set(info().epoch); } });
    new Gauge({ name: 'trireme_replica_last_seq', help: 'Highest seq appended to the log', registers, collect() { this.set(info().lastSeq); } });
    new Gauge({ name: 'trireme_replica_durable_seq', help: 'Highest seq on stable storage', registers, collect() { this.set(info().durableSeq); } });
    new Gauge({ name: 'trireme_replica_size_bytes', help: 'Volume size', registers, collect() { this.set(info().size); } });
    new Gauge({ name: 'trireme_replica_healthy', help: '1 when the store is ok, 0 in the error state', registers, collect() { this.set(info().state === 'ok' ? 1 : 0); } });
    new Gauge({
      name: 'trireme_replica_space_bytes',
      help: 'Log space: total on disk, live, reclaimable by compaction',
      labelNames: ['kind'],
      registers,
      collect() {
        const space = info().space;
        this.set({ kind: 'total' }, space.totalBytes);
        this.set({ kind: 'live' }, space.liveBytes);
        this.set({ kind: 'reclaimable' }, space.reclaimableBytes);
      },
    });
  }
}
