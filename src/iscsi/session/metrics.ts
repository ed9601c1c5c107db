import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Transport metrics (STYLE.md rule 7); label values come from small fixed sets. */
export interface TransportMetrics {
  readonly pdus: Counter<'direction' | 'opcode'>;
  readonly commands: Counter<'class'>;
  readonly bytes: Counter<'direction'>;
  readonly sessions: Gauge<'type'>;
  readonly connections: Gauge;
  readonly latency: Histogram<'class'>;
  readonly protocolErrors: Counter<'code'>;
  /** Counts one PDU through a cached labelled child: labels are hashed once, not per PDU. */
  countPdu(direction: 'in' | 'out', opcode: string): void;
  countBytes(direction: 'in' | 'out', bytes: number): void;
}

function once<T>(registry: Registry | undefined, name: string, make: (registers: Registry[]) => T): T {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as unknown as T;
  return make(registry ? [registry] : []);
}

/** Reuses metrics already in the registry, so several servers may share one registry. */
export function createTransportMetrics(registry?: Registry): TransportMetrics {
  const metrics = {
    pdus: once(registry, 'trireme_iscsi_pdus_total', (registers) => new Counter({ name: 'trireme_iscsi_pdus_total', help: 'iSCSI PDUs by direction and opcode', labelNames: ['direction', 'opcode'], registers })),
    commands: once(registry, 'trireme_iscsi_commands_total', (registers) => new Counter({ name: 'trireme_iscsi_commands_total', help: 'SCSI commands received by class (read, write, other)', labelNames: ['class'], registers })),
    bytes: once(registry, 'trireme_iscsi_transferred_bytes_total', (registers) => new Counter({ name: 'trireme_iscsi_transferred_bytes_total', help: 'Bytes on iSCSI connections by direction (in, out)', labelNames: ['direction'], registers })),
    // A gauge: a live count rather than a counter, hence no _total suffix.
    sessions: once(registry, 'trireme_iscsi_sessions', (registers) => new Gauge({ name: 'trireme_iscsi_sessions', help: 'Open iSCSI sessions by type', labelNames: ['type'], registers })),
    connections: once(registry, 'trireme_iscsi_connections', (registers) => new Gauge({ name: 'trireme_iscsi_connections', help: 'Open TCP connections to the target', registers })),
    latency: once(registry, 'trireme_iscsi_command_seconds', (registers) =>
      new Histogram({ name: 'trireme_iscsi_command_seconds', help: 'SCSI command latency from receipt to status', labelNames: ['class'], buckets: [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers }),
    ),
    protocolErrors: once(registry, 'trireme_iscsi_protocol_errors_total', (registers) => new Counter({ name: 'trireme_iscsi_protocol_errors_total', help: 'Protocol faults by error code', labelNames: ['code'], registers })),
  };
  const pduChildren = new Map<string, { inc(): void }>();
  const bytesIn = metrics.bytes.labels('in');
  const bytesOut = metrics.bytes.labels('out');
  return {
    ...metrics,
    countPdu(direction, opcode) {
      const key = `${direction}:${opcode}`;
      let child = pduChildren.get(key);
      if (!child) {
        child = metrics.pdus.labels(direction, opcode);
        pduChildren.set(key, child);
      }
      child.inc();
    },
    countBytes(direction, bytes) {
      (direction === 'in' ? bytesIn : bytesOut).inc(bytes);
    },
  };
}

/** Command class from the CDB opcode, for the commands counter and latency histogram. */
export function commandClass(cdb: Buffer): 'read' | 'write' | 'other' {
  switch (cdb[0]) {
    case 0x08:
    case 0x28:
    case 0xa8:
    case 0x88:
      return 'read';
    case 0x0a:
    case 0x2a:
    case 0xaa:
    case 0x8a:
    case 0x2e:
    case 0x8e:
    case 0x93:
      return 'write';
    default:
      return 'other';
  }
}
