import { Counter, Histogram, type Registry } from 'prom-client';

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
  readonly latency: Histogram<'class'>;

  private readonly byClass = new Map<string, { commands: { inc(): void }; latency: { observe(v: number): void } }>();
  private readonly byStatus = new Map<string, { inc(): void }>();

  /** One finished command; labelled children are cached because this runs for every I/O. */
  record(commandClass: string, status: string, seconds: number): void {
    let perClass = this.byClass.get(commandClass);
    if (!perClass) {
      perClass = { commands: this.commands.labels(commandClass), latency: this.latency.labels(commandClass) };
      this.byClass.set(commandClass, perClass);
    }
    perClass.commands.inc();
    perClass.latency.observe(seconds);
    let perStatus = this.byStatus.get(status);
    if (!perStatus) {
      perStatus = this.statuses.labels(status);
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
    }));
    this.latency = shared(registry, 'trireme_scsi_command_seconds', () => new Histogram({
      name: 'trireme_scsi_command_seconds',
      help: 'SCSI command execution time in the SCSI layer, by command class',
      labelNames: ['class'],
      buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10],
      registers,
    }));
  }
}
