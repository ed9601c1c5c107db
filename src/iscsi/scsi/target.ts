import { performance } from 'node:perf_hooks';
import { InvalidArgumentError } from '../../common/errors';
import type { Logger } from '../../common/logger';
import type { Registry } from '../../common/metrics';
import type { BlockDevice } from '../block-device';
import { reportLuns, requestSenseNoLun } from './basic-commands';
import { CommandTable, validateCdb, writesMedium, type CommandClass, type CommandContext, type CommandSpec, type HandlerResult, type TargetInfo } from './command-table';
import { ALL_SPECS } from './commands';
import { inquiryNoLun } from './inquiry';
import { LogicalUnit } from './logical-unit';
import { ScsiMetrics } from './metrics';
import { legacyConflicts } from './legacy-reservation';
import { ASC, ScsiError, SenseKey, deviceErrorToScsi, invalidOperationCode, senseKeyName, type Asc } from './sense';
import { ScsiStatus, type Nexus, type ScsiCommand, type ScsiResult, type ScsiTarget } from './types';

export interface ScsiTargetOptions {
  readonly iqn: string;
  readonly luns: ReadonlyArray<{ readonly lun: number; readonly device: BlockDevice }>;
  readonly logger: Logger;
  readonly registry?: Registry;
}

const STATUS_NAMES: Record<number, string> = {
  [ScsiStatus.Good]: 'good',
  [ScsiStatus.CheckCondition]: 'check_condition',
  [ScsiStatus.ReservationConflict]: 'reservation_conflict',
  [ScsiStatus.TaskAborted]: 'task_aborted',
};

/** The SCSI side of one target: dispatch, unit attentions, reservations, metrics. */
class Target implements ScsiTarget, TargetInfo {
  readonly iqn: string;
  private readonly luns = new Map<number, LogicalUnit>();
  private readonly nexuses = new Map<string, Nexus>();
  private readonly table = new CommandTable(ALL_SPECS);
  private readonly metrics: ScsiMetrics;
  private readonly logger: Logger;
  private readonly unsubscribe: Array<() => void> = [];

  constructor(options: ScsiTargetOptions) {
    this.iqn = options.iqn;
    this.logger = options.logger.child({ component: 'scsi', target: options.iqn });
    this.metrics = new ScsiMetrics(options.registry);
    for (const { lun, device } of options.luns) {
      if (!Number.isInteger(lun) || lun < 0 || lun > 16383) throw new InvalidArgumentError(`LUN ${lun} is not in 0..16383`);
      if (this.luns.has(lun)) throw new InvalidArgumentError(`LUN ${lun} is configured twice`);
      const lu = new LogicalUnit(lun, device);
      this.luns.set(lun, lu);
      // SBC-3 §4.6: a capacity change is announced to every nexus.
      this.unsubscribe.push(device.onResize(() => this.raise(lu, ASC.CapacityDataChanged)));
    }
  }

  lunNumbers(): number[] {
    return [...this.luns.keys()].sort((a, b) => a - b);
  }

  commands(): readonly CommandSpec[] {
    return this.table.all();
  }

  hasLun(lun: number): boolean {
    return this.luns.has(lun);
  }

  nexusAdded(nexus: Nexus): void {
    this.touch(nexus);
  }

  nexusRemoved(nexus: Nexus): void {
    this.nexuses.delete(nexus.id);
    for (const lu of this.luns.values()) {
      lu.unitAttentions.forget(nexus.id);
      // SPC-2 §5.5.1: an I_T nexus loss releases its RESERVE(6) reservation; persistent registrations stay.
      if (lu.legacyHolder === nexus.id) lu.legacyHolder = undefined;
    }
  }

  /**
   * LOGICAL UNIT RESET and target resets (SAM-5 §6.6, §6.7): every nexus gets
   * a unit attention, BUS DEVICE RESET FUNCTION OCCURRED (29h/03h) for a LU
   * reset and POWER ON, RESET, OR BUS DEVICE RESET OCCURRED (29h/00h) for a
   * target reset; RESERVE(6) reservations are released, persistent ones kept.
   */
  reset(scope: { kind: 'lun'; lun: number } | { kind: 'target' }, by: Nexus): void {
    this.touch(by);
    const units = scope.kind === 'lun' ? [this.luns.get(scope.lun)].filter((lu): lu is LogicalUnit => lu !== undefined) : [...this.luns.values()];
    const code = scope.kind === 'lun' ? ASC.BusDeviceResetOccurred : ASC.PowerOnResetOccurred;
    for (const lu of units) {
      lu.legacyHolder = undefined;
      // SPC-4 §6.11 (MODE SENSE, current values after a logical unit reset):
      // current mode parameters revert to saved values, or to defaults when
      // nothing is saved; Trireme saves nothing, so SWP returns to off.
      lu.softwareWriteProtect = false;
      this.raise(lu, code);
    }
    this.logger.info({ scope: scope.kind, lun: scope.kind === 'lun' ? scope.lun : undefined, initiator: by.initiatorName }, 'reset');
  }

  async execute(command: ScsiCommand): Promise<ScsiResult> {
    // performance.now() rather than hrtime.bigint(): no BigInt allocated per command.
    const started = performance.now();
    const seen = { class: 'other' as CommandClass };
    const result = await this.run(command, seen);
    this.metrics.record(seen.class, STATUS_NAMES[result.status] ?? 'other', (performance.now() - started) / 1000);
    if (result.status === ScsiStatus.CheckCondition && result.sense) this.metrics.errors.inc({ sense_key: senseKeyName(result.sense[2] & 0x0f) });
    return result;
  }

  async close(): Promise<void> {
    for (const off of this.unsubscribe.splice(0)) off();
  }

  private async run(command: ScsiCommand, seen: { class: CommandClass }): Promise<ScsiResult> {
    if (command.signal?.aborted) return { status: ScsiStatus.TaskAborted };
    const { cdb, nexus } = command;
    this.touch(nexus);
    let dataOutLength: number | undefined;
    try {
      if (cdb.length === 0) throw invalidOperationCode();
      const lu = this.luns.get(command.lun);
      if (!lu) return this.withoutLun(command);
      let spec: CommandSpec | undefined;
      let lookupError: unknown;
      try {
        spec = this.table.lookup(cdb);
        seen.class = spec.class;
      } catch (err) {
        lookupError = err;
      }
      // SAM-5 §5.14: a pending unit attention ends any command but INQUIRY, REPORT LUNS and REQUEST SENSE.
      if (!spec?.skipsUnitAttention) {
        const sense = lu.unitAttentions.take(nexus.id);
        if (sense) return { status: ScsiStatus.CheckCondition, sense };
      }
      if (!spec) throw lookupError;
      validateCdb(spec, cdb);
      if (lu.reservations.conflicts(nexus.id, spec.access) || legacyConflicts(lu, nexus.id, spec)) {
        return { status: ScsiStatus.ReservationConflict };
      }
      dataOutLength = spec.dataOut?.(cdb, lu.blockSize);
      // SPC-4 §7.5.8: with SWP=1 a command that writes the medium ends in DATA PROTECT, 27h/02h.
      if (lu.softwareWriteProtect && writesMedium(spec)) throw ScsiError.of(SenseKey.DataProtect, ASC.LogicalUnitSoftwareWriteProtected);
      return await this.dispatch(spec, { command, cdb, lu, target: this }, dataOutLength);
    } catch (err) {
      return withDataOut(this.failure(err, command), dataOutLength);
    }
  }

  /**
   * Runs the handler; an abort resolves at once with TASK ABORTED while the
   * device finishes in the background. One promise per command: this runs
   * for every I/O, so no race of two promises and no listener left behind.
   */
  private dispatch(spec: CommandSpec, ctx: CommandContext, dataOutLength: number | undefined): Promise<ScsiResult> {
    const work = ctx.lu.tasks.run(ctx.command.taskAttribute, () => spec.handler(ctx));
    const signal = ctx.command.signal;
    if (!signal) return work.then((result) => toResult(result, dataOutLength));
    return new Promise<ScsiResult>((resolve, reject) => {
      let aborted = false;
      const onAbort = (): void => {
        aborted = true;
        resolve({ status: ScsiStatus.TaskAborted });
      };
      signal.addEventListener('abort', onAbort, { once: true });
      work.then(
        (result) => {
          signal.removeEventListener('abort', onAbort);
          resolve(toResult(result, dataOutLength));
        },
        (err: unknown) => {
          signal.removeEventListener('abort', onAbort);
          if (aborted) this.logger.debug({ err, op: spec.name }, 'aborted command failed');
          else reject(err);
        },
      );
    });
  }

  /** SPC-4 §6.4.1, §6.33, §6.39: only INQUIRY, REPORT LUNS and REQUEST SENSE answer on a LUN that does not exist. */
  private withoutLun(command: ScsiCommand): ScsiResult {
    const { cdb } = command;
    const spec = this.table.find(cdb[0], cdb.length > 1 ? cdb[1] & 0x1f : undefined).spec;
    if (spec && (cdb[0] === 0x12 || cdb[0] === 0xa0 || cdb[0] === 0x03)) {
      validateCdb(spec, cdb);
      if (cdb[0] === 0x12) return good(inquiryNoLun(cdb));
      if (cdb[0] === 0xa0) return good(reportLuns(cdb, this));
      return good(requestSenseNoLun(cdb));
    }
    throw ScsiError.of(SenseKey.IllegalRequest, ASC.LogicalUnitNotSupported);
  }

  private failure(err: unknown, command: ScsiCommand): ScsiResult {
    if (!(err instanceof ScsiError)) {
      this.logger.error({ err, lun: command.lun, opcode: command.cdb[0], initiator: command.nexus.initiatorName }, 'device error');
    } else if (this.logger.isLevelEnabled('debug')) {
      this.logger.debug({ lun: command.lun, opcode: command.cdb[0], key: err.key, asc: err.asc, ascq: err.ascq }, 'check condition');
    }
    return { status: ScsiStatus.CheckCondition, sense: deviceErrorToScsi(err).sense() };
  }

  /** First contact with a nexus: SAM-5 §5.14 asks for a POWER ON, RESET unit attention on every LU. */
  private touch(nexus: Nexus): void {
    if (this.nexuses.has(nexus.id)) return;
    this.nexuses.set(nexus.id, nexus);
    for (const lu of this.luns.values()) lu.unitAttentions.add(nexus.id, ASC.PowerOnResetOccurred);
  }

  raiseExcept(lu: LogicalUnit, code: Asc, except: string): void {
    for (const id of this.nexuses.keys()) if (id !== except) lu.unitAttentions.add(id, code);
  }

  /** Queues a unit attention on one LU for every known nexus. */
  raise(lu: LogicalUnit, code: Asc): void {
    for (const id of this.nexuses.keys()) lu.unitAttentions.add(id, code);
  }
}

function withDataOut(result: ScsiResult, dataOutLength: number | undefined): ScsiResult {
  return dataOutLength === undefined || result.dataOutLength !== undefined ? result : { ...result, dataOutLength };
}

function good(dataIn: Buffer): ScsiResult {
  return { status: ScsiStatus.Good, dataIn };
}

function toResult(result: HandlerResult, dataOutLength: number | undefined): ScsiResult {
  if (result === undefined) return dataOutLength === undefined ? { status: ScsiStatus.Good } : { status: ScsiStatus.Good, dataOutLength };
  if (Buffer.isBuffer(result)) return { status: ScsiStatus.Good, dataIn: result };
  return withDataOut(result, dataOutLength);
}

export function createTarget(options: ScsiTargetOptions): ScsiTarget {
  return new Target(options);
}
