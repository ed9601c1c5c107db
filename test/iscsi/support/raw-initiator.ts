import { connect, type Socket } from 'node:net';
import { digestOf, pad4, PduFramer, type RawPdu } from '../../../src/iscsi/pdu/framer';
import { encodeLun } from '../../../src/iscsi/pdu/lun';
import { encodeTextPairs, parseTextPairs, type TextPairs } from '../../../src/iscsi/pdu/text';

/**
 * A deliberately small hand-built initiator for the tests real clients cannot
 * drive: malformed and mutated PDUs, data digests (libiscsi and QEMU do not
 * negotiate DataDigest), peers that stop reading or vanish mid-command.
 * Conformance is checked with libiscsi and QEMU elsewhere.
 */
export interface InitiatorPduFields {
  opcode: number;
  immediate?: boolean;
  flags?: number;
  lun?: number;
  itt?: number;
  /** Bytes 20..47 of the BHS, written by the caller per opcode. */
  fill?: (bhs: Buffer) => void;
  data?: Buffer;
  ahs?: Buffer;
}

export function buildPdu(fields: InitiatorPduFields, digests = { header: false, data: false }): Buffer {
  const bhs = Buffer.alloc(48);
  bhs[0] = (fields.opcode & 0x3f) | (fields.immediate ? 0x40 : 0);
  bhs[1] = fields.flags ?? 0x80;
  const ahs = fields.ahs ?? Buffer.alloc(0);
  bhs[4] = ahs.length / 4;
  const data = fields.data ?? Buffer.alloc(0);
  bhs.writeUIntBE(data.length, 5, 3);
  if (fields.lun !== undefined) encodeLun(fields.lun, bhs);
  bhs.writeUInt32BE((fields.itt ?? 0) >>> 0, 16);
  fields.fill?.(bhs);
  const parts = [bhs, ahs];
  if (digests.header) {
    const d = Buffer.alloc(4);
    d.writeUInt32LE(digestOf(bhs, ahs), 0);
    parts.push(d);
  }
  if (data.length > 0) {
    const padded = Buffer.alloc(pad4(data.length));
    data.copy(padded);
    parts.push(padded);
    if (digests.data) {
      const d = Buffer.alloc(4);
      d.writeUInt32LE(digestOf(padded), 0);
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

export const ISID = '80123456789a';

export function loginRequest(options: { itt?: number; cmdSN?: number; csg: number; nsg: number; transit: boolean; isid?: string; tsih?: number; pairs: TextPairs }): Buffer {
  return buildPdu({
    opcode: 0x03,
    immediate: true,
    flags: (options.transit ? 0x80 : 0) | (options.csg << 2) | options.nsg,
    itt: options.itt ?? 1,
    data: encodeTextPairs(options.pairs),
    fill: (bhs) => {
      Buffer.from(options.isid ?? ISID, 'hex').copy(bhs, 8);
      bhs.writeUInt16BE(options.tsih ?? 0, 14);
      bhs.writeUInt32BE(options.cmdSN ?? 1, 24);
    },
  });
}

export function scsiCommand(options: { itt: number; cmdSN: number; cdb: Buffer; read?: boolean; write?: boolean; edtl: number; final?: boolean; data?: Buffer; lun?: number; immediate?: boolean }): InitiatorPduFields {
  return {
    opcode: 0x01,
    immediate: options.immediate,
    flags: (options.final === false ? 0 : 0x80) | (options.read ? 0x40 : 0) | (options.write ? 0x20 : 0) | 1,
    lun: options.lun ?? 0,
    itt: options.itt,
    data: options.data,
    fill: (bhs) => {
      bhs.writeUInt32BE(options.edtl, 20);
      bhs.writeUInt32BE(options.cmdSN, 24);
      options.cdb.copy(bhs, 32);
    },
  };
}

export function dataOut(options: { itt: number; ttt: number; dataSN: number; offset: number; data: Buffer; final: boolean }): InitiatorPduFields {
  return {
    opcode: 0x05,
    flags: options.final ? 0x80 : 0,
    lun: 0,
    itt: options.itt,
    data: options.data,
    fill: (bhs) => {
      bhs.writeUInt32BE(options.ttt >>> 0, 20);
      bhs.writeUInt32BE(options.dataSN, 36);
      bhs.writeUInt32BE(options.offset, 40);
    },
  };
}

export const read10 = (lba: number, blocks: number): Buffer => {
  const cdb = Buffer.alloc(16);
  cdb[0] = 0x28;
  cdb.writeUInt32BE(lba, 2);
  cdb.writeUInt16BE(blocks, 7);
  return cdb;
};

export const write10 = (lba: number, blocks: number): Buffer => {
  const cdb = read10(lba, blocks);
  cdb[0] = 0x2a;
  return cdb;
};

/** One TCP connection speaking raw PDUs, with a queue of what the target sent. */
export class RawInitiator {
  readonly socket: Socket;
  readonly framer = new PduFramer({ maxDataSegmentLength: 16 * 1024 * 1024, headerDigest: false, dataDigest: false });
  digests = { header: false, data: false };
  private readonly queue: RawPdu[] = [];
  private waiter?: () => void;
  closed = false;
  cmdSN = 1;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      for (const pdu of this.framer.push(chunk)) this.queue.push(pdu);
      this.waiter?.();
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      this.closed = true;
      this.waiter?.();
    });
  }

  static async connect(port: number): Promise<RawInitiator> {
    const socket = connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return new RawInitiator(socket);
  }

  write(bytes: Buffer): void {
    if (!this.closed) this.socket.write(bytes);
  }

  send(fields: InitiatorPduFields): void {
    this.write(buildPdu(fields, this.digests));
  }

  /** The next PDU from the target; undefined when the connection closes first or time runs out. */
  async next(timeoutMs = 5000): Promise<RawPdu | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (this.queue.length === 0 && !this.closed && Date.now() < deadline) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.max(1, deadline - Date.now()));
        this.waiter = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.waiter = undefined;
    }
    return this.queue.shift();
  }

  async waitClosed(timeoutMs = 5000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    return this.closed;
  }

  /** A one-round login straight to full feature phase (no authentication). */
  async login(targetName: string, extra: TextPairs = [], isid = ISID): Promise<{ status: number; pairs: TextPairs; tsih: number }> {
    const pairs: TextPairs = [['InitiatorName', 'iqn.2026-11.io.trireme:test-initiator'], ['SessionType', 'Normal'], ['TargetName', targetName], ...extra];
    this.write(loginRequest({ csg: 1, nsg: 3, transit: true, isid, cmdSN: this.cmdSN, pairs }));
    const reply = await this.next();
    if (!reply) throw new Error('no login response');
    const status = reply.bhs.readUInt16BE(36);
    const answers = parseTextPairs(reply.data);
    const get = (key: string): string | undefined => answers.find(([k]) => k === key)?.[1];
    this.digests = { header: get('HeaderDigest') === 'CRC32C', data: get('DataDigest') === 'CRC32C' };
    this.framer.limits.headerDigest = this.digests.header;
    this.framer.limits.dataDigest = this.digests.data;
    return { status, pairs: answers, tsih: reply.bhs.readUInt16BE(14) };
  }

  close(): void {
    this.socket.destroy();
  }
}
