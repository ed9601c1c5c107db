import type { LogicalUnit } from './logical-unit';
import type { AccessClass } from './pr-state';
import type { Asc } from './sense';
import { invalidFieldInCdb, invalidOperationCode } from './sense';
import type { ScsiCommand, ScsiResult } from './types';

/** Metric label for a command: a small, fixed set. */
export type CommandClass = 'read' | 'write' | 'verify' | 'unmap' | 'flush' | 'inquiry' | 'reservation' | 'other';

/**
 * Commands that write the medium, refused while SWP is set (SPC-4 §7.5.8,
 * SBC-3 §4.13): every 'write' command (WRITE, WRITE AND VERIFY, WRITE SAME,
 * COMPARE AND WRITE, ORWRITE) and UNMAP. SYNCHRONIZE CACHE ('flush') only
 * makes already accepted writes durable and stays allowed.
 */
export function writesMedium(spec: CommandSpec): boolean {
  return spec.class === 'write' || spec.class === 'unmap';
}

/** What the target knows beyond one LU: its name and all LUNs (REPORT LUNS, VPD 0x83). */
export interface TargetInfo {
  readonly iqn: string;
  lunNumbers(): number[];
  /** Every command the target supports, for REPORT SUPPORTED OPERATION CODES. */
  commands(): readonly CommandSpec[];
  /** Queues a unit attention on one LU for every known nexus but `except` (SPC-4 §6.9: MODE PARAMETERS CHANGED). */
  raiseExcept(lu: LogicalUnit, code: Asc, except: string): void;
}

export interface CommandContext {
  readonly command: ScsiCommand;
  readonly cdb: Buffer;
  readonly lu: LogicalUnit;
  readonly target: TargetInfo;
}

export type HandlerResult = Buffer | ScsiResult | void;
export type Handler = (ctx: CommandContext) => Promise<HandlerResult> | HandlerResult;

export interface CommandSpec {
  readonly name: string;
  readonly opcode: number;
  /** For MAINTENANCE IN, SERVICE ACTION IN(16), PERSISTENT RESERVE IN/OUT: the 5-bit field in byte 1. */
  readonly serviceAction?: number;
  /**
   * CDB USAGE DATA (SPC-4 §6.35.3): byte 0 the opcode, the service action in
   * its field, elsewhere the bits the device server looks at. Its length is
   * the CDB length. A set bit outside this map is INVALID FIELD IN CDB.
   */
  readonly usage: readonly number[];
  readonly class: CommandClass;
  readonly access: AccessClass;
  /** INQUIRY, REPORT LUNS and REQUEST SENSE neither report nor clear unit attentions (SAM-5 §5.14). */
  readonly skipsUnitAttention?: boolean;
  readonly handler: Handler;
  /**
   * Bytes of Data-Out the CDB calls for, when the command takes any; returned
   * to the transport as ScsiResult.dataOutLength for the residual count.
   */
  readonly dataOut?: (cdb: Buffer, blockSize: number) => number;
}

type Entry = { readonly kind: 'unsupported' } | { readonly kind: 'command'; readonly spec: CommandSpec } | { readonly kind: 'service-actions'; readonly actions: Map<number, CommandSpec> };

const UNSUPPORTED: Entry = { kind: 'unsupported' };

/** CDB length by group code (SPC-4 §4.2.5.1): opcode bits 7-5. */
export function cdbLengthOf(opcode: number): number {
  const group = opcode >> 5;
  if (group === 0) return 6;
  if (group === 1 || group === 2) return 10;
  if (group === 4) return 16;
  if (group === 5) return 12;
  return 0;
}

/** The 256-entry dispatch table, every unused opcode answering INVALID COMMAND OPERATION CODE. */
export class CommandTable {
  private readonly table: Entry[] = new Array<Entry>(256).fill(UNSUPPORTED);
  private readonly specs: CommandSpec[] = [];

  constructor(specs: readonly CommandSpec[]) {
    for (const spec of specs) this.add(spec);
  }

  all(): readonly CommandSpec[] {
    return this.specs;
  }

  /** The spec for a CDB, or a ScsiError for an unsupported opcode or service action. */
  lookup(cdb: Buffer): CommandSpec {
    const entry = this.table[cdb[0]];
    if (entry.kind === 'command') return entry.spec;
    if (entry.kind === 'service-actions') {
      const spec = cdb.length > 1 ? entry.actions.get(cdb[1] & 0x1f) : undefined;
      if (spec) return spec;
      throw invalidFieldInCdb(1, 4);
    }
    throw invalidOperationCode();
  }

  /** The spec for REPORT SUPPORTED OPERATION CODES lookups; `hasServiceActions` tells options 1 and 2 apart. */
  find(opcode: number, serviceAction?: number): { spec?: CommandSpec; hasServiceActions: boolean } {
    const entry = this.table[opcode & 0xff];
    if (entry.kind === 'command') return { spec: entry.spec, hasServiceActions: false };
    if (entry.kind === 'service-actions') return { spec: serviceAction === undefined ? undefined : entry.actions.get(serviceAction), hasServiceActions: true };
    return { hasServiceActions: false };
  }

  private add(spec: CommandSpec): void {
    if (spec.usage.length !== cdbLengthOf(spec.opcode) || spec.usage[0] !== spec.opcode) throw new Error(`bad usage map for ${spec.name}`);
    const current = this.table[spec.opcode];
    if (spec.serviceAction === undefined) {
      if (current.kind !== 'unsupported') throw new Error(`opcode 0x${spec.opcode.toString(16)} registered twice`);
      this.table[spec.opcode] = { kind: 'command', spec };
    } else {
      const actions = current.kind === 'service-actions' ? current.actions : new Map<number, CommandSpec>();
      if (current.kind === 'command' || actions.has(spec.serviceAction)) throw new Error(`${spec.name} registered twice`);
      actions.set(spec.serviceAction, spec);
      this.table[spec.opcode] = { kind: 'service-actions', actions };
    }
    this.specs.push(spec);
  }
}

/**
 * Checks the CDB against the spec's usage map: it must be long enough, and
 * reserved bits, unsupported features (e.g. protection information) and the
 * NACA/LINK bits of the CONTROL byte must be zero (SAM-5 §5.2: NormACA=0).
 */
export function validateCdb(spec: CommandSpec, cdb: Buffer): void {
  const length = spec.usage.length;
  if (cdb.length < length) throw invalidOperationCode();
  for (let i = 1; i < length; i += 1) {
    let allowed = spec.usage[i];
    if (i === 1 && spec.serviceAction !== undefined) allowed |= 0x1f;
    const bad = cdb[i] & ~allowed & 0xff;
    if (bad !== 0) throw invalidFieldInCdb(i, 31 - Math.clz32(bad));
  }
}
