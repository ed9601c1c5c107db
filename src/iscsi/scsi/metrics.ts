import { Counter, type Registry } from 'prom-client';
import { FastHistogram, counterCell, flushCells, type CounterCell, type HistogramChild } from '../io-metrics';

/**
 * Several targets in one process share one registry: a metric already
 * registered there is reused instead of registered twice (which prom-client refuses).
 */
function shared<T>(registry: Registry | undefined, name: string, make: () => T): T {
  const existing = registry?.getSingleMetric(name);
  return existing ? (existing as unknown as T) : make();
}

/** SCSI layer metrics (STYLE.md rule 7): labels from small fixed sets only. */
export class ScsiMetrics {
  readonly commands: Counter<'class'>;
  readonly errors: Counter<'sense_key'>;
  readonly statuses: Counter<'status'>;
  readonly latency: FastHistogram;

  // Cells and children per label value (io-metrics.ts says why), made on first use.
  private readonly byClass = new Map<string, { commands: CounterCell; latency: HistogramChild }>();
  private readonly byStatus = new Map<string, CounterCell>();

  /** One finished command; labelled children are cached because this runs for every I/O. */
  record(commandClass: string, status: string, seconds: number): void {
    let perClass = this.byClass.get(commandClass);
    if (!perClass) {
      perClass = { commands: counterCell(this.commands, { class: commandClass }), latency: this.latency.child(commandClass) };
      this.byClass.set(commandClass, perClass);
    }
    perClass.commands.inc();
    perClass.latency.observe(seconds);
    let perStatus = this.byStatus.get(status);
    if (!perStatus) {
      perStatus = counterCell(this.statuses, { status });
      this.byStatus.set(status, perStatus);
    }
    perStatus.inc();
  }

  constructor(registry: Registry | undefined) {
    const registers = registry ? [registry] : [];
    this.commands = shared(registry, 'trireme_scsi_commands_total', () => new Counter({
      name: 'trireme_scsi_commands_total',
      help: 'SCSI commands executed, by command class',
      labelNames: ['class'],
      registers,
      collect: flushCells,
    }));
    this.errors = shared(registry, 'trireme_scsi_errors_total', () => new Counter({
      name: 'trireme_scsi_errors_total',
      help: 'SCSI commands ended with CHECK CONDITION, by sense key',
      labelNames: ['sense_key'],
      registers,
    }));
    this.statuses = shared(registry, 'trireme_scsi_status_total', () => new Counter({
      name: 'trireme_scsi_status_total',
      help: 'SCSI commands completed, by SCSI status',
      labelNames: ['status'],
      registers,
      collect: flushCells,
    }));
    this.latency = shared(registry, 'trireme_scsi_command_seconds', () =>
      new FastHistogram(
        'trireme_scsi_command_seconds',
        'SCSI command execution time in the SCSI layer, by command class',
        'class',
        [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
        registry,
      ),
    );
  }
}
