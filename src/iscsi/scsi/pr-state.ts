import type { Nexus } from './types';

/** Persistent reservation types (SPC-4 §6.15.3.4, table 169). */
export const enum PrType {
  WriteExclusive = 1,
  ExclusiveAccess = 3,
  WriteExclusiveRegistrantsOnly = 5,
  ExclusiveAccessRegistrantsOnly = 6,
  WriteExclusiveAllRegistrants = 7,
  ExclusiveAccessAllRegistrants = 8,
}

export const PR_TYPES: ReadonlySet<number> = new Set([1, 3, 5, 6, 7, 8]);

/** How a command touches the medium, for the reservation conflict table (SPC-4 §5.12.1, table 60; SBC-3 table 13). */
export type AccessClass = 'always' | 'read' | 'write';

export interface Registration {
  readonly key: bigint;
  readonly nexus: Nexus;
}

export interface Reservation {
  /** The nexus that reserved; for all-registrants types every registrant is a holder. */
  readonly holder: string;
  readonly type: PrType;
}

export function isAllRegistrants(type: PrType): boolean {
  return type === PrType.WriteExclusiveAllRegistrants || type === PrType.ExclusiveAccessAllRegistrants;
}

function isRegistrantsType(type: PrType): boolean {
  return type === PrType.WriteExclusiveRegistrantsOnly || type === PrType.ExclusiveAccessRegistrantsOnly || isAllRegistrants(type);
}

function isExclusiveAccess(type: PrType): boolean {
  return type === PrType.ExclusiveAccess || type === PrType.ExclusiveAccessRegistrantsOnly || type === PrType.ExclusiveAccessAllRegistrants;
}

/**
 * Registrations and the reservation of one LU, keyed by I_T nexus. Not
 * persisted across restarts: PERSIST THROUGH POWER LOSS is not offered
 * (PTPL_C=0) and APTPL=1 is refused.
 */
export class PersistentReservations {
  generation = 0;
  readonly registrations = new Map<string, Registration>();
  reservation: Reservation | undefined;

  keyOf(nexusId: string): bigint | undefined {
    return this.registrations.get(nexusId)?.key;
  }

  /** Whether the nexus holds the reservation (SPC-4 §5.12.10: every registrant for all-registrants types). */
  isHolder(nexusId: string): boolean {
    const r = this.reservation;
    if (!r) return false;
    if (isAllRegistrants(r.type)) return this.registrations.has(nexusId);
    return r.holder === nexusId;
  }

  /**
   * SPC-4 table 60: under a Write Exclusive type, anyone may read but only the
   * holder writes; under Exclusive Access, only the holder does either. For the
   * registrants-only and all-registrants types, every registered nexus counts
   * as holder for access purposes.
   */
  conflicts(nexusId: string, access: AccessClass): boolean {
    const r = this.reservation;
    if (!r || access === 'always') return false;
    if (r.holder === nexusId || this.isHolder(nexusId)) return false;
    if (isRegistrantsType(r.type) && this.registrations.has(nexusId)) return false;
    if (access === 'read') return isExclusiveAccess(r.type);
    return true;
  }

  /** Registered nexus ids other than `except`. */
  others(except: string): string[] {
    return [...this.registrations.keys()].filter((id) => id !== except);
  }
}
