import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { MemoryDevice } from '../../src/iscsi/device/memory-device';
import { parseTextPairs, type TextPairs } from '../../src/iscsi/pdu/text';
import { RawInitiator, buildPdu, loginRequest } from './support/raw-initiator';
import { startTarget, type RunningTarget } from './support/target';

let target: RunningTarget;
const clients: RawInitiator[] = [];
const EXTRA = Array.from({ length: 12 }, (_, i) => `iqn.2026-11.io.trireme:a-rather-long-target-name-to-fill-segments-${i}`);

before(async () => {
  target = await startTarget();
  for (const iqn of EXTRA) target.server.addTarget({ iqn, luns: [{ lun: 0, device: new MemoryDevice({ size: 1024 * 1024 }) }] });
});

after(async () => {
  for (const c of clients) c.close();
  await target.close();
});

async function connect(): Promise<RawInitiator> {
  const c = await RawInitiator.connect(target.port);
  clients.push(c);
  return c;
}

async function discovery(c: RawInitiator, extra: TextPairs = []): Promise<void> {
  c.write(loginRequest({ csg: 1, nsg: 3, transit: true, pairs: [['InitiatorName', 'iqn.2026-11.io.trireme:d'], ['SessionType', 'Discovery'], ...extra] }));
  const reply = await c.next();
  assert.equal(reply?.bhs.readUInt16BE(36), 0);
  const answers = parseTextPairs(reply?.data ?? Buffer.alloc(0));
  assert.equal(answers.find(([k]) => k === 'TargetPortalGroupTag'), undefined, 'no TPGT in a discovery session');
}

function textRequest(c: RawInitiator, itt: number, ttt: number, data: string): void {
  c.send({ opcode: 0x04, immediate: true, itt, data: Buffer.from(data), fill: (b) => {
    b.writeUInt32BE(ttt, 20);
    b.writeUInt32BE(c.cmdSN, 24);
  } });
}

test('SendTargets=All in a discovery session lists every target, in pieces no longer than MaxRecvDataSegmentLength', async () => {
  const c = await connect();
  await discovery(c, [['MaxRecvDataSegmentLength', '512']]);
  textRequest(c, 1, 0xffffffff, 'SendTargets=All\0');
  const pieces: Buffer[] = [];
  for (;;) {
    const pdu = await c.next();
    assert.equal(pdu?.bhs[0], 0x24);
    assert.ok((pdu?.data.length ?? 0) <= 512);
    pieces.push(pdu?.data ?? Buffer.alloc(0));
    if ((pdu?.bhs[1] ?? 0) & 0x80) break;
    assert.equal((pdu?.bhs[1] ?? 0) & 0x40, 0x40, 'C bit while more follows');
    // An empty Text Request with our TTT fetches the next piece (RFC 7143 §11.10.4).
    textRequest(c, 1, pdu?.bhs.readUInt32BE(20) ?? 0, '');
  }
  assert.ok(pieces.length > 1);
  const names = parseTextPairs(Buffer.concat(pieces)).filter(([k]) => k === 'TargetName').map(([, v]) => v);
  assert.deepEqual(names.sort(), [target.iqn, ...EXTRA].sort());
});

test('SendTargets with a name lists only that target; an unknown name lists none', async () => {
  const c = await connect();
  await discovery(c);
  textRequest(c, 2, 0xffffffff, `SendTargets=${EXTRA[3]}\0`);
  const one = parseTextPairs((await c.next())?.data ?? Buffer.alloc(0));
  assert.deepEqual(one, [['TargetName', EXTRA[3]], ['TargetAddress', `127.0.0.1:${target.port},1`]]);
  textRequest(c, 3, 0xffffffff, 'SendTargets=iqn.2026-11.io.trireme:none\0');
  assert.equal((await c.next())?.data.length, 0);
});

test('SCSI commands in a discovery session are rejected', async () => {
  const c = await connect();
  await discovery(c);
  c.send({ opcode: 0x01, itt: 9, fill: (b) => b.writeUInt32BE(c.cmdSN, 24) });
  const reply = await c.next();
  assert.equal(reply?.bhs[0], 0x3f);
});

test('a login naming a session that does not exist is refused with 0x020a', async () => {
  const c = await connect();
  c.write(loginRequest({ csg: 1, nsg: 3, transit: true, tsih: 0x4242, pairs: [['InitiatorName', 'iqn.2026-11.io.trireme:x'], ['TargetName', target.iqn]] }));
  const reply = await c.next();
  assert.equal(reply?.bhs.readUInt16BE(36), 0x020a);
  assert.equal(await c.waitClosed(2000), true);
});

test('a second connection to an existing session is refused: MaxConnections is 1', async () => {
  const first = await connect();
  const { tsih } = await first.login(target.iqn, [], '80bbbbbbbbbb');
  assert.notEqual(tsih, 0);
  const second = await connect();
  second.write(loginRequest({ csg: 1, nsg: 3, transit: true, tsih, isid: '80bbbbbbbbbb', pairs: [['InitiatorName', 'iqn.2026-11.io.trireme:test-initiator'], ['TargetName', target.iqn]] }));
  assert.equal((await second.next())?.bhs.readUInt16BE(36), 0x0206);
});

test('login text split over PDUs with the C bit is gathered before it is answered', async () => {
  const c = await connect();
  const whole = Buffer.from(`InitiatorName=iqn.2026-11.io.trireme:split\0TargetName=${target.iqn}\0MaxRecvDataSegmentLength=65536\0`);
  const cut = 20;
  const first = buildPdu({ opcode: 0x03, immediate: true, flags: 0x40 | (1 << 2) | 3, itt: 1, data: whole.subarray(0, cut), fill: (b) => Buffer.from('80cccccccccc', 'hex').copy(b, 8) });
  c.write(first);
  const partial = await c.next();
  assert.equal(partial?.bhs.readUInt16BE(36), 0);
  assert.equal(partial?.data.length, 0);
  assert.equal((partial?.bhs[1] ?? 0) & 0x80, 0, 'no transit yet');
  c.write(buildPdu({ opcode: 0x03, immediate: true, flags: 0x80 | (1 << 2) | 3, itt: 1, data: whole.subarray(cut), fill: (b) => Buffer.from('80cccccccccc', 'hex').copy(b, 8) }));
  const done = await c.next();
  assert.equal(done?.bhs.readUInt16BE(36), 0);
  assert.equal((done?.bhs[1] ?? 0) & 0x83, 0x83, 'transit to full feature phase');
  assert.notEqual(done?.bhs.readUInt16BE(14), 0, 'TSIH assigned');
});

test('a non-login PDU before login closes the connection', async () => {
  const c = await connect();
  c.send({ opcode: 0x00, immediate: true, itt: 1 });
  assert.equal(await c.waitClosed(2000), true);
});

test('connections beyond maxConnections are refused while the others keep working', async () => {
  const small = await startTarget({ maxConnections: 2 });
  try {
    const a = await RawInitiator.connect(small.port);
    const b = await RawInitiator.connect(small.port);
    const c = await RawInitiator.connect(small.port);
    assert.equal(await c.waitClosed(2000), true);
    assert.equal((await a.login(small.iqn)).status, 0);
    assert.equal(b.closed, false);
    a.close();
    b.close();
  } finally {
    await small.close();
  }
});
