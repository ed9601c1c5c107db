import * as encode from '../pdu/encode';
import type { OutPdu, Residual, Sequence } from '../pdu/encode';
import { ScsiStatus, type ScsiResult } from '../scsi/types';

/** A PDU to build at send time, when StatSN/ExpCmdSN/MaxCmdSN are known. */
export interface PendingPdu {
  build(seq: Sequence): OutPdu;
  /** Whether this PDU carries status and so takes (and advances) StatSN (RFC 7143 §4.2.2.2). */
  readonly status: boolean;
}

export interface CompletedCommand {
  readonly itt: number;
  readonly lun: number;
  readonly read: boolean;
  readonly write: boolean;
  readonly expectedDataTransferLength: number;
  /** R2Ts sent for the command (ExpDataSN of a write's response). */
  readonly r2tCount: number;
}

export interface Limits {
  /** The initiator's MaxRecvDataSegmentLength. */
  readonly maxSegment: number;
  readonly maxBurstLength: number;
}

/**
 * Residual of a transfer (RFC 7143 §11.4.5): overflow when the command had more
 * to move than ExpectedDataTransferLength allowed, underflow when less.
 */
export function residualOf(expected: number, actual: number): Residual {
  if (actual > expected) return { overflow: true, underflow: false, count: actual - expected };
  if (actual < expected) return { overflow: false, underflow: true, count: expected - actual };
  return { overflow: false, underflow: false, count: 0 };
}

/**
 * Data-In PDUs then status for a finished command (RFC 7143 §11.7, §11.4).
 * Good status without sense rides on the last Data-In (S bit, §11.7.1);
 * otherwise a SCSI Response follows, with sense data behind its SenseLength.
 */
export function responsePdus(command: CompletedCommand, result: ScsiResult, limits: Limits): PendingPdu[] {
  const edtl = command.expectedDataTransferLength;
  const produced = result.dataIn?.length ?? 0;
  let residual: Residual = { overflow: false, underflow: false, count: 0 };
  let data: Buffer = Buffer.alloc(0);
  if (result.dataIn && produced > 0) {
    data = produced > edtl ? result.dataIn.subarray(0, edtl) : result.dataIn;
    residual = residualOf(edtl, produced);
  } else if (command.read && !command.write) {
    residual = residualOf(edtl, 0);
  } else if (command.write && result.dataOutLength !== undefined) {
    residual = residualOf(edtl, result.dataOutLength);
  } else if (command.write) {
    residual = { overflow: false, underflow: false, count: 0 };
  }
  const out: PendingPdu[] = [];
  const collapse = result.status === ScsiStatus.Good && !result.sense;
  const segment = Math.max(1, Math.min(limits.maxSegment, limits.maxBurstLength));
  let dataSN = 0;
  for (let offset = 0; offset < data.length; offset += segment) {
    const chunk = data.subarray(offset, Math.min(offset + segment, data.length));
    const last = offset + chunk.length >= data.length;
    // A Data-In sequence ends (F bit) at each MaxBurstLength boundary and at the end (§11.7.1).
    const burstEnd = last || (offset + chunk.length) % limits.maxBurstLength === 0;
    const withStatus = last && collapse;
    const sn = dataSN++;
    out.push({
      status: withStatus,
      build: (seq) =>
        encode.dataIn({
          final: burstEnd,
          lun: command.lun,
          itt: command.itt,
          dataSN: sn,
          bufferOffset: offset,
          data: chunk,
          seq,
          status: withStatus ? { status: result.status, residual } : undefined,
        }),
    });
  }
  if (!collapse || data.length === 0) {
    const expDataSN = command.write && !command.read ? command.r2tCount : dataSN;
    out.push({
      status: true,
      build: (seq) => encode.scsiResponse({ itt: command.itt, status: result.status, sense: result.sense, residual, seq, expDataSN }),
    });
  }
  return out;
}
