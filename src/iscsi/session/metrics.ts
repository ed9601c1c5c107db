import { Counter, Gauge, type Registry } from 'prom-client';
import { FastHistogram, counterCell, flushCells, type CounterCell, type HistogramChild } from '../io-metrics';
import { opcodeName } from '../pdu/opcodes';

/** Command classes of the commands counter and the latency histogram. */
export type TransportCommandClass = 'read' | 'write' | 'other';

/** Transport metrics (STYLE.md rule 7); label values come from small fixed sets. */
export interface TransportMetrics {
  readonly pdus: Counter<'direction' | 'opcode'>;
  readonly commands: Counter<'class'>;
  readonly bytes: Counter<'direction'>;
  readonly sessions: Gauge<'type'>;
  readonly connections: Gauge;
  readonly latency: FastHistogram;
  readonly protocolErrors: Counter<'code'>;
  /** Counts one PDU by its 6-bit opcode (io-metrics.ts says why these are not plain inc() calls). */
  countPdu(direction: 'in' | 'out', opcode: number): void;
  countBytes(direction: 'in' | 'out', bytes: number): void;
  countCommand(commandClass: TransportCommandClass): void;
  observeLatency(commandClass: TransportCommandClass, seconds: number): void;
}

function once<T>(registry: Registry | undefined, name: string, make: (registers: Registry[]) => T): T {
  const existing = registry?.getSingleMetric(name);
  if (existing) return existing as unknown as T;
  return make(registry ? [registry] : []);
}

const CLASSES: readonly TransportCommandClass[] = ['read', 'write', 'other'];

/** Reuses metrics already in the registry, so several servers may share one registry. */
export function createTransportMetrics(registry?: Registry): TransportMetrics {
  const metrics = {
    pdus: once(registry, 'trireme_iscsi_pdus_total', (registers) => new Counter({ name: 'trireme_iscsi_pdus_total', help: 'iSCSI PDUs by direction and opcode', labelNames: ['direction', 'opcode'], registers, collect: flushCells })),
    commands: once(registry, 'trireme_iscsi_commands_total', (registers) => new Counter({ name: 'trireme_iscsi_commands_total', help: 'SCSI commands received by class (read, write, other)', labelNames: ['class'], registers, collect: flushCells })),
    bytes: once(registry, 'trireme_iscsi_transferred_bytes_total', (registers) => new Counter({ name: 'trireme_iscsi_transferred_bytes_total', help: 'Bytes on iSCSI connections by direction (in, out)', labelNames: ['direction'], registers, collect: flushCells })),
    // A gauge: a live count rather than a counter, hence no _total suffix.
    sessions: once(registry, 'trireme_iscsi_sessions', (registers) => new Gauge({ name: 'trireme_iscsi_sessions', help: 'Open iSCSI sessions by type', labelNames: ['type'], registers })),
    connections: once(registry, 'trireme_iscsi_connections', (registers) => new Gauge({ name: 'trireme_iscsi_connections', help: 'Open TCP connections to the target', registers })),
    latency: once(registry, 'trireme_iscsi_command_seconds', (registers) =>
      new FastHistogram('trireme_iscsi_command_seconds', 'SCSI command latency from receipt to status', 'class', [0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5], registers[0]),
    ),
    protocolErrors: once(registry, 'trireme_iscsi_protocol_errors_total', (registers) => new Counter({ name: 'trireme_iscsi_protocol_errors_total', help: 'Protocol faults by error code', labelNames: ['code'], registers })),
  };
  // Cells per 6-bit opcode and direction, made on first use.
  const pduCells: Record<'in' | 'out', Array<CounterCell | undefined>> = { in: new Array(64), out: new Array(64) };
  const bytesIn = counterCell(metrics.bytes, { direction: 'in' });
  const bytesOut = counterCell(metrics.bytes, { direction: 'out' });
  const commandCells = new Map(CLASSES.map((c) => [c, counterCell(metrics.commands, { class: c })]));
  const latencyChildren = new Map<TransportCommandClass, HistogramChild>(CLASSES.map((c) => [c, metrics.latency.child(c)]));
  return {
    ...metrics,
    countPdu(direction, opcode) {
      const cells = pduCells[direction];
      let cell = cells[opcode & 0x3f];
      if (!cell) {
        cell = counterCell(metrics.pdus, { direction, opcode: opcodeName(opcode & 0x3f) });
        cells[opcode & 0x3f] = cell;
      }
      cell.inc();
    },
    countBytes(direction, bytes) {
      (direction === 'in' ? bytesIn : bytesOut).inc(bytes);
    },
    countCommand(commandClass) {
      commandCells.get(commandClass)?.inc();
    },
    observeLatency(commandClass, seconds) {
      latencyChildren.get(commandClass)?.observe(seconds);
    },
  };
}

/** Command class from the CDB opcode, for the commands counter and latency histogram. */
export function commandClass(cdb: Buffer): TransportCommandClass {
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
