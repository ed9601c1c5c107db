import { TriremeError } from '../../common/errors';

/**
 * A protocol fault on the data path: a frame that cannot be trusted (bad magic,
 * version, header CRC, unknown opcode, oversized payload). The connection that
 * sent it is closed; its peer's other connections are unaffected.
 */
export class WireError extends TriremeError {
  constructor(code: WireErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'WireError';
  }
}

export const WireErrorCode = {
  BadMagic: 'ERR_WIRE_BAD_MAGIC',
  BadVersion: 'ERR_WIRE_BAD_VERSION',
  HeaderCrc: 'ERR_WIRE_HEADER_CRC',
  PayloadCrc: 'ERR_WIRE_PAYLOAD_CRC',
  BadOpcode: 'ERR_WIRE_BAD_OPCODE',
  BadFlags: 'ERR_WIRE_BAD_FLAGS',
  BadStatus: 'ERR_WIRE_BAD_STATUS',
  BadField: 'ERR_WIRE_BAD_FIELD',
  TooLarge: 'ERR_WIRE_FRAME_TOO_LARGE',
} as const;
export type WireErrorCode = (typeof WireErrorCode)[keyof typeof WireErrorCode];
