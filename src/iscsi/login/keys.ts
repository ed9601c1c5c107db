import type { SessionParams, TargetOffers } from './params';

/**
 * Login keys as a table (RFC 7143 §13): kind, range, result function and where
 * the result goes. `negotiateKey` answers one key the initiator offered.
 */
type NumericResult = 'min' | 'max';
type BooleanResult = 'and' | 'or';

interface NumericKey {
  kind: 'numeric';
  min: number;
  max: number;
  result: NumericResult;
  ours(offers: TargetOffers): number;
  apply(params: SessionParams, value: number): void;
}

interface BooleanKey {
  kind: 'boolean';
  result: BooleanResult;
  ours: boolean;
  apply(params: SessionParams, value: boolean): void;
}

interface DigestKey {
  kind: 'digest';
  apply(params: SessionParams, crc: boolean): void;
}

/** Declarative numeric key: the initiator states its own value, we only record it. */
interface DeclarativeKey {
  kind: 'declarative';
  min: number;
  max: number;
  apply(params: SessionParams, value: number): void;
}

type KeyDef = NumericKey | BooleanKey | DigestKey | DeclarativeKey;

const MAX_24 = 16777215;

export const KEY_TABLE: Readonly<Record<string, KeyDef & { normalOnly?: boolean }>> = {
  HeaderDigest: { kind: 'digest', apply: (p, v) => (p.headerDigest = v) },
  DataDigest: { kind: 'digest', apply: (p, v) => (p.dataDigest = v) },
  MaxRecvDataSegmentLength: { kind: 'declarative', min: 512, max: MAX_24, apply: (p, v) => (p.initiatorMaxRecvDataSegmentLength = v) },
  MaxConnections: { kind: 'numeric', min: 1, max: 65535, result: 'min', ours: () => 1, apply: (p, v) => (p.maxConnections = v), normalOnly: true },
  InitialR2T: { kind: 'boolean', result: 'or', ours: false, apply: (p, v) => (p.initialR2T = v), normalOnly: true },
  ImmediateData: { kind: 'boolean', result: 'and', ours: true, apply: (p, v) => (p.immediateData = v), normalOnly: true },
  MaxBurstLength: { kind: 'numeric', min: 512, max: MAX_24, result: 'min', ours: (o) => o.maxBurstLength, apply: (p, v) => (p.maxBurstLength = v), normalOnly: true },
  FirstBurstLength: { kind: 'numeric', min: 512, max: MAX_24, result: 'min', ours: (o) => o.firstBurstLength, apply: (p, v) => (p.firstBurstLength = v), normalOnly: true },
  DefaultTime2Wait: { kind: 'numeric', min: 0, max: 3600, result: 'max', ours: () => 2, apply: (p, v) => (p.defaultTime2Wait = v) },
  // ERL 0 keeps nothing after a connection fails, so there is nothing to retain.
  DefaultTime2Retain: { kind: 'numeric', min: 0, max: 3600, result: 'min', ours: () => 0, apply: (p, v) => (p.defaultTime2Retain = v) },
  MaxOutstandingR2T: { kind: 'numeric', min: 1, max: 65535, result: 'min', ours: (o) => o.maxOutstandingR2T, apply: (p, v) => (p.maxOutstandingR2T = v), normalOnly: true },
  // Data reassembly assumes in-order PDUs and sequences: offering Yes makes the OR result Yes.
  DataPDUInOrder: { kind: 'boolean', result: 'or', ours: true, apply: (p, v) => (p.dataPDUInOrder = v), normalOnly: true },
  DataSequenceInOrder: { kind: 'boolean', result: 'or', ours: true, apply: (p, v) => (p.dataSequenceInOrder = v), normalOnly: true },
  ErrorRecoveryLevel: { kind: 'numeric', min: 0, max: 2, result: 'min', ours: () => 0, apply: (p, v) => (p.errorRecoveryLevel = v) },
};

/**
 * Keys made obsolete by RFC 7143 §13.25 (markers) that RFC 3720 initiators
 * still send; answering them keeps those initiators happy.
 */
const MARKER_KEYS: Record<string, string> = { OFMarker: 'No', IFMarker: 'No', OFMarkInt: 'Irrelevant', IFMarkInt: 'Irrelevant' };

/** Values an initiator may send as an answer to an offer of ours; they need no reply. */
const ANSWER_VALUES = new Set(['NotUnderstood', 'Irrelevant', 'Reject']);

export function parseNumber(value: string): number | undefined {
  if (/^[0-9]{1,10}$/.test(value)) return Number(value);
  if (/^0[xX][0-9a-fA-F]{1,8}$/.test(value)) return Number.parseInt(value.slice(2), 16);
  return undefined;
}

export interface KeyContext {
  readonly params: SessionParams;
  readonly offers: TargetOffers;
  readonly discovery: boolean;
}

/** The answer to one operational key, or undefined when none is due. Applies the result to `params`. */
export function negotiateKey(key: string, value: string, ctx: KeyContext): string | undefined {
  if (ANSWER_VALUES.has(value)) return undefined;
  const marker = MARKER_KEYS[key];
  if (marker !== undefined) return marker;
  // RFC 7143 §13.23: we implement the RFC 3720 task reporting semantics only.
  if (key === 'TaskReporting') return value.split(',').includes('RFC3720') ? 'RFC3720' : 'Reject';
  const def = KEY_TABLE[key];
  if (!def) return 'NotUnderstood';
  // RFC 7143 §6.2.3: keys that do not apply to a discovery session are answered Irrelevant.
  if (def.normalOnly && ctx.discovery) return 'Irrelevant';
  switch (def.kind) {
    case 'digest': {
      const offered = value.split(',');
      if (offered.some((v) => v !== 'None' && v !== 'CRC32C' && !v.startsWith('X-'))) return 'Reject';
      const pick = offered.find((v) => v === 'None' || (v === 'CRC32C' && ctx.offers.digests));
      if (!pick) return 'Reject';
      def.apply(ctx.params, pick === 'CRC32C');
      return pick;
    }
    case 'boolean': {
      if (value !== 'Yes' && value !== 'No') return 'Reject';
      const theirs = value === 'Yes';
      const result = def.result === 'and' ? theirs && def.ours : theirs || def.ours;
      def.apply(ctx.params, result);
      return result ? 'Yes' : 'No';
    }
    case 'numeric': {
      const theirs = parseNumber(value);
      if (theirs === undefined || theirs < def.min || theirs > def.max) return 'Reject';
      const ours = def.ours(ctx.offers);
      const result = def.result === 'min' ? Math.min(theirs, ours) : Math.max(theirs, ours);
      def.apply(ctx.params, result);
      return String(result);
    }
    case 'declarative': {
      const theirs = parseNumber(value);
      if (theirs === undefined || theirs < def.min || theirs > def.max) return 'Reject';
      def.apply(ctx.params, theirs);
      // Our own declaration is sent separately, once per login (see declarations()).
      return undefined;
    }
  }
}

/** RFC 7143 §13.14: FirstBurstLength must not exceed MaxBurstLength. */
export function finishNegotiation(params: SessionParams): void {
  if (params.firstBurstLength > params.maxBurstLength) params.firstBurstLength = params.maxBurstLength;
}
