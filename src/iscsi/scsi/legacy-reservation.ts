import type { CommandContext, CommandSpec } from './command-table';
import type { LogicalUnit } from './logical-unit';
import { ScsiStatus, type ScsiResult } from './types';

const RELEASE_6 = 0x17;

/**
 * RESERVE(6)/RELEASE(6) reservations (SPC-2 §7.21, §7.17; kept by SPC-4 for
 * compatibility): while one nexus holds it, others may only run INQUIRY,
 * REPORT LUNS, REQUEST SENSE and RELEASE(6) (a no-op for them).
 */
export function legacyConflicts(lu: LogicalUnit, nexusId: string, spec: CommandSpec): boolean {
  if (lu.legacyHolder === undefined || lu.legacyHolder === nexusId) return false;
  return !(spec.skipsUnitAttention || spec.opcode === RELEASE_6);
}

/** RESERVE(6): refused while persistent reservations are in use (SPC-4 §5.12.3). */
function reserve6(ctx: CommandContext): ScsiResult | void {
  const { lu, command } = ctx;
  const pr = lu.reservations;
  if (pr.reservation || pr.registrations.size > 0) return { status: ScsiStatus.ReservationConflict };
  lu.legacyHolder = command.nexus.id;
}

/** RELEASE(6): releases only the caller's own reservation; otherwise GOOD and nothing changes. */
function release6(ctx: CommandContext): void {
  if (ctx.lu.legacyHolder === ctx.command.nexus.id) ctx.lu.legacyHolder = undefined;
}

export const LEGACY_RESERVATION_SPECS: readonly CommandSpec[] = [
  { name: 'RESERVE(6)', opcode: 0x16, usage: [0x16, 0, 0, 0, 0, 0], class: 'reservation', access: 'write', handler: reserve6 },
  { name: 'RELEASE(6)', opcode: 0x17, usage: [0x17, 0, 0, 0, 0, 0], class: 'reservation', access: 'always', handler: release6 },
];
