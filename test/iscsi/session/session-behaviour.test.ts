import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { parseTextPairs } from '../../../src/iscsi/pdu/text';
import { RawInitiator, buildPdu, dataOut, read10, scsiCommand, write10 } from '../support/raw-initiator';
import { startTarget, type RunningTarget } from '../support/target';

// Raw PDUs let these tests pin exact wire behaviour (R2T sizes, S bit, TMF codes)
// that libiscsi and QEMU exercise but do not expose; they complement the real-client tests.
let target: RunningTarget;
const clients: RawInitiator[] = [];

before(async () => {
  target = await startTarget({ connection: { nopIntervalMs: 300, nopTimeoutMs: 900 } });
});

after(async () => {
  for (const c of clients) c.close();
  await target.close();
});

async function client(extra: Array<[string, string]> = [], isid?: string): Promise<RawInitiator> {
  const c = await RawInitiator.connect(target.port);
  clients.push(c);
  const { status } = await c.login(target.iqn, extra, isid);
  assert.equal(status, 0);
  // TEST UNIT READY takes the power-on unit attention every new I_T nexus starts with (SAM-5 §6.2).
  c.send(scsiCommand({ itt: 0x7fff0000, cmdSN: c.cmdSN++, cdb: Buffer.alloc(16), edtl: 0 }));
  const ua = await nextReply(c);
  assert.equal(ua?.bhs[0], 0x21);
  return c;
}

/** Next PDU that is not a keep-alive NOP-In ping. */
async function nextReply(c: RawInitiator) {
  for (;;) {
    const pdu = await c.next();
    if (!pdu || (pdu.bhs[0] & 0x3f) !== 0x20 || pdu.bhs.readUInt32BE(16) !== 0xffffffff) return pdu;
  }
}

const SMALL_BURSTS: Array<[string, string]> = [
  ['MaxBurstLength', '4096'],
  ['FirstBurstLength', '4096'],
  ['MaxOutstandingR2T', '2'],
  ['InitialR2T', 'Yes'],
  ['ImmediateData', 'No'],
  ['MaxRecvDataSegmentLength', '4096'],
];

test('R2Ts honour MaxBurstLength and MaxOutstandingR2T; Data-In splits by MaxRecvDataSegmentLength with status on the last PDU', async () => {
  const c = await client(SMALL_BURSTS);
  const payload = Buffer.alloc(16384);
  for (let i = 0; i < payload.length; i++) payload[i] = i % 251;
  c.send(scsiCommand({ itt: 1, cmdSN: c.cmdSN++, cdb: write10(8, 32), write: true, edtl: 16384 }));
  const r2ts = [await nextReply(c), await nextReply(c)];
  for (const [i, r2t] of r2ts.entries()) {
    assert.equal(r2t?.bhs[0], 0x31);
    assert.equal(r2t?.bhs.readUInt32BE(36), i, 'R2TSN');
    assert.equal(r2t?.bhs.readUInt32BE(40), i * 4096, 'BufferOffset');
    assert.equal(r2t?.bhs.readUInt32BE(44), 4096, 'DesiredDataTransferLength');
  }
  // No third R2T while two are open.
  assert.equal(await c.next(150), undefined);
  const answer = (r2t: NonNullable<(typeof r2ts)[number]>) => {
    const ttt = r2t.bhs.readUInt32BE(20);
    const offset = r2t.bhs.readUInt32BE(40);
    c.send(dataOut({ itt: 1, ttt, dataSN: 0, offset, data: payload.subarray(offset, offset + 2048), final: false }));
    c.send(dataOut({ itt: 1, ttt, dataSN: 1, offset: offset + 2048, data: payload.subarray(offset + 2048, offset + 4096), final: true }));
  };
  answer(r2ts[0] as NonNullable<(typeof r2ts)[number]>);
  const third = await nextReply(c);
  assert.equal(third?.bhs.readUInt32BE(40), 8192);
  answer(r2ts[1] as NonNullable<(typeof r2ts)[number]>);
  const fourth = await nextReply(c);
  assert.equal(fourth?.bhs.readUInt32BE(40), 12288);
  answer(third as NonNullable<typeof third>);
  answer(fourth as NonNullable<typeof fourth>);
  const response = await nextReply(c);
  assert.equal(response?.bhs[0], 0x21);
  assert.equal(response?.bhs[3], 0, 'GOOD');
  assert.equal(response?.bhs.readUInt32BE(36), 4, 'ExpDataSN counts the R2Ts');
  assert.deepEqual(await target.device.read(8 * 512, 16384), payload);

  // Read it back with EDTL larger than the data: underflow residual on the collapsed status.
  c.send(scsiCommand({ itt: 2, cmdSN: c.cmdSN++, cdb: read10(8, 32), read: true, edtl: 20000 }));
  const pieces: Buffer[] = [];
  for (let i = 0; i < 4; i++) {
    const pdu = await nextReply(c);
    assert.equal(pdu?.bhs[0], 0x25);
    assert.equal(pdu?.bhs.readUInt32BE(36), i, 'DataSN');
    assert.ok((pdu?.data.length ?? 0) <= 4096);
    pieces.push(pdu?.data ?? Buffer.alloc(0));
    if (i === 3) {
      assert.equal((pdu?.bhs[1] ?? 0) & 0x83, 0x83, 'F, U and S bits');
      assert.equal(pdu?.bhs.readUInt32BE(44), 20000 - 16384);
    } else assert.equal((pdu?.bhs[1] ?? 0) & 0x01, 0);
  }
  assert.deepEqual(Buffer.concat(pieces), payload);
});

test('immediate data and unsolicited Data-Out make up the first burst', async () => {
  const c = await client([['InitialR2T', 'No'], ['ImmediateData', 'Yes'], ['FirstBurstLength', '8192']]);
  const payload = Buffer.alloc(12288, 0x42);
  c.send(scsiCommand({ itt: 5, cmdSN: c.cmdSN++, cdb: write10(100, 24), write: true, edtl: 12288, final: false, data: payload.subarray(0, 4096) }));
  c.send(dataOut({ itt: 5, ttt: 0xffffffff, dataSN: 0, offset: 4096, data: payload.subarray(4096, 8192), final: true }));
  const r2t = await nextReply(c);
  assert.equal(r2t?.bhs[0], 0x31);
  assert.equal(r2t?.bhs.readUInt32BE(40), 8192);
  assert.equal(r2t?.bhs.readUInt32BE(44), 4096);
  c.send(dataOut({ itt: 5, ttt: r2t?.bhs.readUInt32BE(20) ?? 0, dataSN: 0, offset: 8192, data: payload.subarray(8192), final: true }));
  const response = await nextReply(c);
  assert.equal(response?.bhs[3], 0);
  assert.deepEqual(await target.device.read(100 * 512, 12288), payload);
});

test('data digests: a good one is accepted, a bad one is rejected with reason 0x02', async () => {
  const c = await client([['DataDigest', 'CRC32C'], ['HeaderDigest', 'CRC32C']]);
  assert.deepEqual(c.digests, { header: true, data: true });
  c.send({ opcode: 0x00, immediate: true, itt: 77, data: Buffer.from('echo me'), fill: (b) => b.writeUInt32BE(0xffffffff, 20) });
  const echo = await nextReply(c);
  assert.equal(echo?.bhs[0], 0x20);
  assert.equal(echo?.data.toString(), 'echo me');
  const bytes = buildPdu({ opcode: 0x00, immediate: true, itt: 78, data: Buffer.from('corrupt'), fill: (b) => b.writeUInt32BE(0xffffffff, 20) }, c.digests);
  bytes[bytes.length - 1] ^= 0xff;
  c.write(bytes);
  const reject = await nextReply(c);
  assert.equal(reject?.bhs[0], 0x3f);
  assert.equal(reject?.bhs[2], 0x02);
  assert.equal(reject?.data.readUInt32BE(16), 78);
});

test('task management: ABORT TASK on a write awaiting data, unknown LUN, unsupported functions', async () => {
  const c = await client(SMALL_BURSTS);
  c.send(scsiCommand({ itt: 9, cmdSN: c.cmdSN++, cdb: write10(0, 8), write: true, edtl: 4096 }));
  assert.equal((await nextReply(c))?.bhs[0], 0x31);
  const tmf = (fn: number, itt: number, rtt: number, lun = 0) =>
    c.send({ opcode: 0x02, immediate: true, flags: 0x80 | fn, lun, itt, fill: (b) => {
      b.writeUInt32BE(rtt, 20);
      b.writeUInt32BE(c.cmdSN, 24);
    } });
  tmf(1, 10, 9);
  const aborted = await nextReply(c);
  assert.equal(aborted?.bhs[0], 0x22);
  assert.equal(aborted?.bhs[2], 0, 'function complete');
  tmf(1, 11, 9);
  assert.equal((await nextReply(c))?.bhs[2], 1, 'the task no longer exists');
  tmf(2, 12, 0xffffffff, 5);
  assert.equal((await nextReply(c))?.bhs[2], 2, 'LUN does not exist');
  tmf(7, 13, 0xffffffff);
  assert.equal((await nextReply(c))?.bhs[2], 5, 'cold reset not supported');
  tmf(5, 14, 0xffffffff);
  assert.equal((await nextReply(c))?.bhs[2], 0, 'LUN reset done');
  // The aborted write never answers; the session still works.
  c.send(scsiCommand({ itt: 15, cmdSN: c.cmdSN++, cdb: Buffer.alloc(16), edtl: 0 }));
  const next = await nextReply(c);
  assert.equal(next?.bhs[0], 0x21);
  assert.equal(next?.bhs.readUInt32BE(16), 15);
});

test('ABORT TASK for a command not yet received takes its CmdSN: the command is ignored when it arrives', async () => {
  const c = await client();
  // Command 51 took CmdSN `future` but is still on its way; the immediate TMF carries the next CmdSN.
  const future = c.cmdSN++;
  c.send({ opcode: 0x02, immediate: true, flags: 0x81, lun: 0, itt: 50, fill: (b) => {
    b.writeUInt32BE(51, 20);
    b.writeUInt32BE(c.cmdSN, 24);
    b.writeUInt32BE(future, 32);
  } });
  const tmf = await nextReply(c);
  assert.equal(tmf?.bhs[2], 0, 'function complete');
  assert.equal(tmf?.bhs.readUInt32BE(28), future + 1, 'ExpCmdSN moved past the aborted CmdSN');
  c.send(scsiCommand({ itt: 51, cmdSN: future, cdb: Buffer.alloc(16), edtl: 0 }));
  c.send(scsiCommand({ itt: 52, cmdSN: c.cmdSN++, cdb: Buffer.alloc(16), edtl: 0 }));
  const reply = await nextReply(c);
  assert.equal(reply?.bhs.readUInt32BE(16), 52, 'only the later command answers');
});

test('SNACK and unknown opcodes are rejected and the session goes on', async () => {
  const c = await client();
  c.send({ opcode: 0x10, itt: 1 });
  const snack = await nextReply(c);
  assert.equal(snack?.bhs[0], 0x3f);
  assert.equal(snack?.bhs[2], 0x05);
  c.send({ opcode: 0x1c, itt: 2 });
  assert.equal((await nextReply(c))?.bhs[2], 0x05);
  c.send({ opcode: 0x00, immediate: true, itt: 3, fill: (b) => b.writeUInt32BE(0xffffffff, 20) });
  assert.equal((await nextReply(c))?.bhs[0], 0x20);
});

test('immediate commands beyond their limit are rejected with reason 0x06', async () => {
  const c = await client(SMALL_BURSTS);
  // Writes awaiting data stay in flight, so the limit is reached deterministically.
  for (let i = 0; i < 17; i++) c.send(scsiCommand({ itt: 300 + i, cmdSN: c.cmdSN, cdb: write10(0, 1), write: true, edtl: 512, immediate: true }));
  let rejected;
  for (let pdu = await nextReply(c); pdu; pdu = await c.next(300)) {
    if (pdu.bhs[0] === 0x3f) rejected = pdu;
  }
  assert.equal(rejected?.bhs[2], 0x06);
  assert.equal(rejected?.data.readUInt32BE(16), 316);
});

test('commands outside the CmdSN window are ignored; in-window ones run', async () => {
  const c = await client();
  c.send(scsiCommand({ itt: 20, cmdSN: c.cmdSN + 1000, cdb: Buffer.alloc(16), edtl: 0 }));
  c.send(scsiCommand({ itt: 21, cmdSN: c.cmdSN - 1, cdb: Buffer.alloc(16), edtl: 0 }));
  c.send(scsiCommand({ itt: 22, cmdSN: c.cmdSN++, cdb: Buffer.alloc(16), edtl: 0 }));
  const reply = await nextReply(c);
  assert.equal(reply?.bhs.readUInt32BE(16), 22);
  assert.equal(reply?.bhs.readUInt32BE(28), c.cmdSN, 'ExpCmdSN');
  assert.equal(await c.next(200), undefined);
});

test('Text SendTargets in a normal session names the session target', async () => {
  const c = await client();
  c.send({ opcode: 0x04, immediate: true, itt: 30, data: Buffer.from('SendTargets=All\0'), fill: (b) => {
    b.writeUInt32BE(0xffffffff, 20);
    b.writeUInt32BE(c.cmdSN, 24);
  } });
  const reply = await nextReply(c);
  assert.equal(reply?.bhs[0], 0x24);
  const pairs = parseTextPairs(reply?.data ?? Buffer.alloc(0));
  assert.deepEqual(pairs[0], ['TargetName', target.iqn]);
  assert.deepEqual(pairs[1], ['TargetAddress', `127.0.0.1:${target.port},1`]);
});

test('the target pings an idle initiator and drops one that stops answering', async () => {
  const c = await client();
  const ping = await c.next(3000);
  assert.equal(ping?.bhs[0], 0x20);
  assert.equal(ping?.bhs.readUInt32BE(16), 0xffffffff);
  const ttt = ping?.bhs.readUInt32BE(20) ?? 0;
  assert.notEqual(ttt, 0xffffffff);
  c.send({ opcode: 0x00, immediate: true, itt: 0xffffffff, fill: (b) => b.writeUInt32BE(ttt, 20) });
  // Answered: still up through the next interval. Then silence gets it dropped.
  assert.equal(await c.waitClosed(500), false);
  assert.equal(await c.waitClosed(5000), true);
});

test('a second login with the same initiator and ISID reinstates the session', async () => {
  const first = await client([], '80aaaaaaaaaa');
  const second = await client([], '80aaaaaaaaaa');
  assert.equal(await first.waitClosed(2000), true);
  second.send({ opcode: 0x00, immediate: true, itt: 1, fill: (b) => b.writeUInt32BE(0xffffffff, 20) });
  assert.equal((await nextReply(second))?.bhs[0], 0x20);
});

test('logout closes the session with a success response', async () => {
  const c = await client();
  c.send({ opcode: 0x06, flags: 0x80, itt: 40, fill: (b) => b.writeUInt32BE(c.cmdSN++, 24) });
  const reply = await nextReply(c);
  assert.equal(reply?.bhs[0], 0x26);
  assert.equal(reply?.bhs[2], 0);
  assert.equal(await c.waitClosed(2000), true);
});

test('on shutdown the target asks for logout with an Async Message', async () => {
  const own = await startTarget();
  const c = await RawInitiator.connect(own.port);
  assert.equal((await c.login(own.iqn)).status, 0);
  const closing = own.close();
  const message = await c.next(2000);
  assert.equal(message?.bhs[0], 0x32);
  assert.equal(message?.bhs[36], 1, 'AsyncEvent: logout requested');
  c.send({ opcode: 0x06, flags: 0x80, itt: 1, fill: (b) => b.writeUInt32BE(1, 24) });
  assert.equal((await c.next(2000))?.bhs[0], 0x26);
  await closing;
  assert.equal(await c.waitClosed(2000), true);
});
