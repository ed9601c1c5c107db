import { TriremeError } from '../../common/errors';
import type { RejectReason } from './opcodes';

/**
 * A protocol fault in what the initiator sent. With `rejectReason` the
 * connection answers a Reject PDU carrying `header` and goes on; without it the
 * connection cannot trust its framing any more and is closed (ERL 0, RFC 7143 §7.1.4).
 */
export class PduError extends TriremeError {
  readonly rejectReason?: RejectReason;
  readonly header?: Buffer;

  constructor(code: string, message: string, options: { rejectReason?: RejectReason; header?: Buffer; cause?: unknown } = {}) {
    super(code, message, { cause: options.cause });
    this.name = 'PduError';
    this.rejectReason = options.rejectReason;
    this.header = options.header;
  }
}

export const PDU_TOO_LARGE = 'ERR_ISCSI_PDU_TOO_LARGE';
export const HEADER_DIGEST = 'ERR_ISCSI_HEADER_DIGEST';
export const INVALID_PDU = 'ERR_ISCSI_INVALID_PDU';
export const INVALID_TEXT = 'ERR_ISCSI_INVALID_TEXT';
