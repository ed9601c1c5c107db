import type { CommandContext, CommandSpec } from './command-table';
import type { LogicalUnit } from './logical-unit';
import { PR_TYPES, type PrType, isAllRegistrants } from './pr-state';
import { ASC, ScsiError, SenseKey, invalidFieldInCdb, invalidFieldInParameterList, parameterListLengthError, type Asc } from './sense';
import { ScsiStatus, type ScsiResult } from './types';

/** PERSISTENT RESERVE OUT service actions (SPC-4 §6.16.2, table 171). */
const enum Action {
  Register = 0,
  Reserve = 1,
  Release = 2,
  Clear = 3,
  Preempt = 4,
  PreemptAndAbort = 5,
  RegisterAndIgnore = 6,
}

const PARAMETER_LIST_LENGTH = 24;
const CONFLICT: ScsiResult = { status: ScsiStatus.ReservationConflict };

interface Request {
  readonly lu: LogicalUnit;
  readonly nexusId: string;
  readonly ctx: CommandContext;
  readonly key: bigint;
  readonly serviceActionKey: bigint;
  readonly type: number;
}

/**
 * Reads the 24-byte parameter list (SPC-4 §6.16.3). SPEC_I_PT, ALL_TG_PT and
 * APTPL are refused (SIP_C, ATP_C and PTPL_C are 0 in REPORT CAPABILITIES):
 * there is one target port and reservations do not survive a restart.
 */
function parse(ctx: CommandContext): Request {
  const { cdb, lu, command } = ctx;
  const length = cdb.readUInt32BE(5);
  if (length !== PARAMETER_LIST_LENGTH) throw parameterListLengthError();
  const data = command.dataOut;
  if (!data || data.length < PARAMETER_LIST_LENGTH) throw parameterListLengthError();
  const flags = data[20];
  if (flags & 0x08) throw invalidFieldInParameterList(20, 3);
  if (flags & 0x04) throw invalidFieldInParameterList(20, 2);
  if (flags & 0x01) throw invalidFieldInParameterList(20, 0);
  return {
    lu,
    nexusId: command.nexus.id,
    ctx,
    key: data.readBigUInt64BE(0),
    serviceActionKey: data.readBigUInt64BE(8),
    type: cdb[2] & 0x0f,
  };
}

/**
 * RESERVE, RELEASE and PREEMPT use SCOPE and TYPE (SPC-4 §6.16.1); only
 * LU_SCOPE exists. REGISTER and CLEAR ignore both fields.
 */
function requireType(r: Request): PrType {
  const scope = r.ctx.cdb[2] >> 4;
  if (scope !== 0) throw invalidFieldInCdb(2, 7);
  if (!PR_TYPES.has(r.type)) throw invalidFieldInCdb(2, 3);
  return r.type as PrType;
}

function notify(lu: LogicalUnit, ids: Iterable<string>, code: Asc): void {
  for (const id of ids) lu.unitAttentions.add(id, code);
}

/**
 * REGISTER and REGISTER AND IGNORE EXISTING KEY (SPC-4 §5.12.7): register,
 * change the key, or (service action key 0) unregister, which releases a
 * reservation the nexus held (SPC-4 §5.12.11.2.3).
 */
function register(r: Request, ignoreExisting: boolean): ScsiResult | void {
  const pr = r.lu.reservations;
  const current = pr.keyOf(r.nexusId);
  if (current === undefined) {
    if (!ignoreExisting && r.key !== 0n) return CONFLICT;
    if (r.serviceActionKey === 0n) return;
    pr.registrations.set(r.nexusId, { key: r.serviceActionKey, nexus: r.ctx.command.nexus });
    pr.generation += 1;
    return;
  }
  if (!ignoreExisting && r.key !== current) return CONFLICT;
  if (r.serviceActionKey !== 0n) {
    pr.registrations.set(r.nexusId, { key: r.serviceActionKey, nexus: r.ctx.command.nexus });
    pr.generation += 1;
    return;
  }
  const reservation = pr.reservation;
  const wasHolder = pr.isHolder(r.nexusId);
  pr.registrations.delete(r.nexusId);
  pr.generation += 1;
  if (!reservation || !wasHolder) return;
  // An all-registrants reservation lasts until its last registrant is gone.
  if (isAllRegistrants(reservation.type) && pr.registrations.size > 0) return;
  pr.reservation = undefined;
  if (reservation.type === 5 || reservation.type === 6) notify(r.lu, pr.registrations.keys(), ASC.ReservationsReleased);
}

/** Checks that the nexus is registered with the key it sent; otherwise RESERVATION CONFLICT (SPC-4 §5.12.8). */
function registered(r: Request): boolean {
  const current = r.lu.reservations.keyOf(r.nexusId);
  return current !== undefined && current === r.key;
}

/** RESERVE (SPC-4 §5.12.9): a second RESERVE of the same type by a holder is a no-op. */
function reserve(r: Request): ScsiResult | void {
  const type = requireType(r);
  if (!registered(r)) return CONFLICT;
  const pr = r.lu.reservations;
  if (!pr.reservation) {
    pr.reservation = { holder: r.nexusId, type };
    return;
  }
  if (!pr.isHolder(r.nexusId) || pr.reservation.type !== type) return CONFLICT;
}

/** RELEASE (SPC-4 §5.12.11.2.2): a wrong type is INVALID RELEASE OF PERSISTENT RESERVATION. */
function release(r: Request): ScsiResult | void {
  requireType(r);
  if (!registered(r)) return CONFLICT;
  const pr = r.lu.reservations;
  const reservation = pr.reservation;
  if (!reservation || !pr.isHolder(r.nexusId)) return;
  if (reservation.type !== r.type) throw ScsiError.of(SenseKey.IllegalRequest, ASC.InvalidReleaseOfPersistentReservation);
  pr.reservation = undefined;
  if (reservation.type !== 1 && reservation.type !== 3) notify(r.lu, pr.others(r.nexusId), ASC.ReservationsReleased);
}

/** CLEAR (SPC-4 §5.12.11.2.6): drops every registration and the reservation. */
function clear(r: Request): ScsiResult | void {
  if (!registered(r)) return CONFLICT;
  const pr = r.lu.reservations;
  const others = pr.others(r.nexusId);
  pr.registrations.clear();
  pr.reservation = undefined;
  pr.generation += 1;
  notify(r.lu, others, ASC.ReservationsPreempted);
}

/**
 * PREEMPT and PREEMPT AND ABORT (SPC-4 §5.12.11.2.4-5; the abort half is left
 * to the transport's task management, so both behave as PREEMPT here).
 */
function preempt(r: Request): ScsiResult | void {
  if (!registered(r)) return CONFLICT;
  const pr = r.lu.reservations;
  const reservation = pr.reservation;
  const victims = (key: bigint) => [...pr.registrations].filter(([id, reg]) => reg.key === key && id !== r.nexusId).map(([id]) => id);
  const remove = (ids: string[]) => {
    for (const id of ids) pr.registrations.delete(id);
    notify(r.lu, ids, ASC.RegistrationsPreempted);
  };
  if (reservation && isAllRegistrants(reservation.type) && r.serviceActionKey === 0n) {
    const type = requireType(r);
    remove(pr.others(r.nexusId));
    pr.reservation = { holder: r.nexusId, type };
    pr.generation += 1;
    return;
  }
  if (reservation && !isAllRegistrants(reservation.type) && pr.keyOf(reservation.holder) === r.serviceActionKey) {
    const type = requireType(r);
    const removed = [...pr.registrations].filter(([, reg]) => reg.key === r.serviceActionKey).map(([id]) => id).filter((id) => id !== r.nexusId);
    remove(removed);
    pr.reservation = { holder: r.nexusId, type };
    pr.generation += 1;
    return;
  }
  if (r.serviceActionKey === 0n) throw invalidFieldInParameterList(8);
  const removed = victims(r.serviceActionKey);
  const selfMatches = pr.keyOf(r.nexusId) === r.serviceActionKey;
  if (removed.length === 0 && !selfMatches) return CONFLICT;
  remove(removed);
  pr.generation += 1;
}

/** PERSISTENT RESERVE OUT (SPC-4 §6.16). REGISTER AND MOVE is not offered. */
function persistentReserveOut(ctx: CommandContext): ScsiResult | void {
  const r = parse(ctx);
  switch ((ctx.cdb[1] & 0x1f) as Action) {
    case Action.Register:
      return register(r, false);
    case Action.RegisterAndIgnore:
      return register(r, true);
    case Action.Reserve:
      return reserve(r);
    case Action.Release:
      return release(r);
    case Action.Clear:
      return clear(r);
    case Action.Preempt:
    case Action.PreemptAndAbort:
      return preempt(r);
    default:
      throw invalidFieldInCdb(1, 4);
  }
}

const NAMES = ['REGISTER', 'RESERVE', 'RELEASE', 'CLEAR', 'PREEMPT', 'PREEMPT AND ABORT', 'REGISTER AND IGNORE EXISTING KEY'];

export const PR_OUT_SPECS: readonly CommandSpec[] = NAMES.map((name, action) => ({
  name: `PERSISTENT RESERVE OUT/${name}`,
  opcode: 0x5f,
  serviceAction: action,
  usage: [0x5f, action, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, 0],
  class: 'reservation',
  access: 'always',
  handler: persistentReserveOut,
  dataOut: (cdb: Buffer) => cdb.readUInt32BE(5),
}));
