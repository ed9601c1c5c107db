import { INVALID_PDU, PduError } from '../pdu/errors';
import { RESERVED_TAG, RejectReason } from '../pdu/opcodes';
import type { DataOutPdu, ScsiCommandPdu } from '../pdu/parse';
import type { SessionParams } from '../login/params';

/** One outstanding R2T (RFC 7143 §11.8): the burst it asked for and what has arrived. */
interface OpenR2t {
  readonly ttt: number;
  readonly offset: number;
  readonly length: number;
  received: number;
  nextDataSN: number;
}

export interface R2tRequest {
  readonly ttt: number;
  readonly r2tSN: number;
  readonly offset: number;
  readonly length: number;
}

const protocolError = (_pdu: unknown, header: Buffer | undefined, message: string): PduError =>
  new PduError(INVALID_PDU, message, { rejectReason: RejectReason.ProtocolError, header });

/**
 * A SCSI command's write side (RFC 7143 §4.2.4.2, §11.7-11.8): immediate data,
 * unsolicited Data-Out up to FirstBurstLength, then solicited bursts of at
 * most MaxBurstLength with at most MaxOutstandingR2T open at once. Data PDUs
 * must arrive in order (DataPDUInOrder=Yes, DataSequenceInOrder=Yes are what
 * this target negotiates).
 *
 * Memory: until the session admits the command, only the first burst is held
 * (at most FirstBurstLength); the buffer for the whole transfer is allocated on
 * admission, which the session grants within its write budget, and R2Ts are
 * sent only after it.
 */
export class WriteCollector {
  private buffer?: Buffer;
  private readonly firstBurst: Buffer;
  private readonly length: number;
  private received = 0;
  private unsolicitedEnd: number;
  private unsolicitedReceived: number;
  private unsolicitedDone: boolean;
  private unsolicitedDataSN = 0;
  private nextR2tOffset: number;
  private r2tSN = 0;
  private readonly open = new Map<number, OpenR2t>();

  constructor(command: ScsiCommandPdu, private readonly params: SessionParams) {
    const edtl = command.expectedDataTransferLength;
    this.length = edtl;
    const immediate = command.data;
    if (immediate.length > 0 && !params.immediateData) throw protocolError(command, undefined, 'immediate data when ImmediateData=No');
    if (immediate.length > Math.min(edtl, params.firstBurstLength)) throw protocolError(command, undefined, 'immediate data exceeds FirstBurstLength or the expected length');
    if (!command.final && params.initialR2T) throw protocolError(command, undefined, 'unsolicited Data-Out announced with InitialR2T=Yes');
    // Without the F bit, unsolicited data continues up to FirstBurstLength (RFC 7143 §11.3.4).
    this.unsolicitedEnd = command.final ? immediate.length : Math.min(edtl, params.firstBurstLength);
    if (immediate.length === this.unsolicitedEnd) {
      // The whole first burst came as immediate data (every small write): the framer's segment is
      // ours to keep (framer.ts), so it is used as is rather than copied.
      this.firstBurst = immediate;
    } else {
      this.firstBurst = Buffer.alloc(this.unsolicitedEnd);
      immediate.copy(this.firstBurst, 0);
    }
    this.received = immediate.length;
    this.unsolicitedReceived = immediate.length;
    this.unsolicitedDone = command.final || this.unsolicitedReceived >= this.unsolicitedEnd;
    this.nextR2tOffset = this.unsolicitedEnd;
  }

  get admitted(): boolean {
    return this.buffer !== undefined;
  }

  /** Allocates the whole transfer; the first burst moves in. */
  admit(): void {
    if (this.buffer) return;
    if (this.firstBurst.length === this.length) {
      this.buffer = this.firstBurst;
      return;
    }
    this.buffer = Buffer.alloc(this.length);
    this.firstBurst.copy(this.buffer, 0, 0, this.unsolicitedReceived);
  }

  /** The data, once complete. */
  get data(): Buffer {
    return this.buffer ?? Buffer.alloc(0);
  }

  get complete(): boolean {
    return this.admitted && this.unsolicitedDone && this.received >= this.length && this.open.size === 0;
  }

  /** R2Ts sent so far: the ExpDataSN of the final response (§11.4.8). */
  get r2tCount(): number {
    return this.r2tSN;
  }

  /** The R2Ts to send now, within MaxOutstandingR2T; `newTtt` hands out target transfer tags. */
  nextR2ts(newTtt: () => number): R2tRequest[] {
    const out: R2tRequest[] = [];
    if (!this.admitted) return out;
    while (this.open.size < this.params.maxOutstandingR2T && this.nextR2tOffset < this.length) {
      const length = Math.min(this.params.maxBurstLength, this.length - this.nextR2tOffset);
      const r2t: OpenR2t = { ttt: newTtt(), offset: this.nextR2tOffset, length, received: 0, nextDataSN: 0 };
      this.open.set(r2t.ttt, r2t);
      out.push({ ttt: r2t.ttt, r2tSN: this.r2tSN++, offset: r2t.offset, length });
      this.nextR2tOffset += length;
    }
    return out;
  }

  /** Takes one Data-Out; throws PduError (answered with Reject, then the connection closes) on a sequence fault. */
  accept(pdu: DataOutPdu, header: Buffer): void {
    const length = pdu.data.length;
    if (pdu.ttt === RESERVED_TAG) {
      if (this.unsolicitedDone) throw protocolError(pdu, header, 'unsolicited Data-Out after the first burst ended');
      if (pdu.bufferOffset !== this.unsolicitedReceived || pdu.dataSN !== this.unsolicitedDataSN) throw protocolError(pdu, header, 'unsolicited Data-Out out of order');
      if (pdu.bufferOffset + length > this.unsolicitedEnd) throw protocolError(pdu, header, 'unsolicited Data-Out beyond FirstBurstLength');
      pdu.data.copy(this.buffer ?? this.firstBurst, pdu.bufferOffset);
      this.received += length;
      this.unsolicitedReceived += length;
      this.unsolicitedDataSN++;
      if (pdu.final) {
        if (this.unsolicitedReceived !== this.unsolicitedEnd) throw protocolError(pdu, header, 'first burst ended short');
        this.unsolicitedDone = true;
      }
      return;
    }
    const r2t = this.open.get(pdu.ttt);
    if (!r2t || !this.buffer) throw protocolError(pdu, header, 'Data-Out with an unknown target transfer tag');
    if (pdu.dataSN !== r2t.nextDataSN) throw protocolError(pdu, header, `DataSN ${pdu.dataSN} where ${r2t.nextDataSN} was due`);
    if (pdu.bufferOffset !== r2t.offset + r2t.received || r2t.received + length > r2t.length) throw protocolError(pdu, header, 'Data-Out outside its R2T');
    pdu.data.copy(this.buffer, pdu.bufferOffset);
    this.received += length;
    r2t.received += length;
    r2t.nextDataSN++;
    if (pdu.final) {
      if (r2t.received !== r2t.length) throw protocolError(pdu, header, 'burst ended short of the R2T length');
      this.open.delete(r2t.ttt);
    }
  }
}
