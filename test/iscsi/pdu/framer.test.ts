import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PDU_TOO_LARGE, HEADER_DIGEST, PduError } from '../../../src/iscsi/pdu/errors';
import { digestOf, PduFramer, type RawPdu } from '../../../src/iscsi/pdu/framer';
import { buildPdu, dataOut, loginRequest, scsiCommand, read10 } from '../support/raw-initiator';

const noDigests = { header: false, data: false };
const bothDigests = { header: true, data: true };

/** Fixtures: one PDU of each shape the framer must handle. */
function fixtures(digests: { header: boolean; data: boolean }): Buffer[] {
  return [
    loginRequest({ csg: 1, nsg: 3, transit: true, pairs: [['InitiatorName', 'iqn.x'], ['TargetName', 'iqn.y']] }),
    buildPdu(scsiCommand({ itt: 7, cmdSN: 1, cdb: read10(0, 1), read: true, edtl: 512 }), digests),
    buildPdu(dataOut({ itt: 7, ttt: 3, dataSN: 0, offset: 0, data: Buffer.alloc(1001, 0x5a), final: true }), digests),
    buildPdu({ opcode: 0x00, immediate: true, itt: 9, data: Buffer.from('abc') }, digests),
    buildPdu({ opcode: 0x01, ahs: Buffer.from([0, 5, 1, 0, 1, 2, 3, 4]), itt: 1 }, digests),
  ];
}

function frameAll(stream: Buffer, splits: number[], digests: { header: boolean; data: boolean }): RawPdu[] {
  const framer = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: digests.header, dataDigest: digests.data });
  const out: RawPdu[] = [];
  let at = 0;
  for (const split of [...splits, stream.length]) {
    out.push(...framer.push(stream.subarray(at, split)));
    at = split;
  }
  assert.equal(framer.buffered, 0);
  return out;
}

for (const digests of [noDigests, bothDigests]) {
  test(`every fixture frames identically when split at every byte (digests ${digests.header})`, () => {
    // The login request is built without digests; only frame it on the digest-free run.
    const all = fixtures(digests).filter((_, i) => !digests.header || i > 0);
    for (const fixture of all) {
      const whole = frameAll(fixture, [], digests);
      assert.equal(whole.length, 1);
      for (let split = 1; split < fixture.length; split++) {
        const parts = frameAll(fixture, [split], digests);
        assert.equal(parts.length, 1, `split at ${split}`);
        assert.deepEqual(parts[0].bhs, whole[0].bhs);
        assert.deepEqual(parts[0].ahs, whole[0].ahs);
        assert.deepEqual(parts[0].data, whole[0].data);
        assert.equal(parts[0].dataDigestOk, true);
      }
    }
    // All fixtures back to back, fed one byte at a time.
    const stream = Buffer.concat(all);
    const bytewise = frameAll(stream, Array.from({ length: stream.length - 1 }, (_, i) => i + 1), digests);
    assert.equal(bytewise.length, all.length);
  });
}

test('a data segment over the limit is refused from its header alone', () => {
  const framer = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: false, dataDigest: false });
  const header = buildPdu({ opcode: 0x05, data: Buffer.alloc(8193) }).subarray(0, 48);
  assert.throws(
    () => framer.push(header),
    (err: unknown) => err instanceof PduError && err.code === PDU_TOO_LARGE,
  );
});

test('a huge announced length costs nothing before it is refused', () => {
  const framer = new PduFramer({ maxDataSegmentLength: 262144, headerDigest: false, dataDigest: false });
  const bhs = Buffer.alloc(48);
  bhs[0] = 0x05;
  bhs.writeUIntBE(0xffffff, 5, 3);
  assert.throws(() => framer.push(bhs), (err: unknown) => (err as PduError).code === PDU_TOO_LARGE);
});

test('a header digest mismatch is fatal, a data digest mismatch is flagged', () => {
  const good = buildPdu({ opcode: 0x00, itt: 1, data: Buffer.from('ping') }, bothDigests);
  const badHeader = Buffer.from(good);
  badHeader[48] ^= 0xff;
  const framer = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: true, dataDigest: true });
  assert.throws(() => framer.push(badHeader), (err: unknown) => (err as PduError).code === HEADER_DIGEST);

  const badData = Buffer.from(good);
  badData[badData.length - 1] ^= 0x01;
  const second = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: true, dataDigest: true });
  const [pdu] = second.push(badData);
  assert.equal(pdu.dataDigestOk, false);
  assert.equal(pdu.data.toString(), 'ping');
});

test('CRC32C matches the RFC 3720 B.4 check values', () => {
  // 32 bytes of zeros -> 0x8a9136aa; 32 bytes of 0xff -> 0x62a8ab43 (RFC 3720 Appendix B.4).
  assert.equal(digestOf(Buffer.alloc(32)), 0x8a9136aa);
  assert.equal(digestOf(Buffer.alloc(32, 0xff)), 0x62a8ab43);
});

test('frames view whole segments of a chunk and copy segments split across chunks', () => {
  // The framer's contract (framer.ts): pushed chunks are given up, as net.Socket never reuses
  // a read buffer, so a segment inside one chunk is handed out without a copy.
  const bytes = buildPdu({ opcode: 0x00, itt: 1, data: Buffer.from('hello') });
  const whole = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: false, dataDigest: false });
  const [viewed] = whole.push(bytes);
  assert.equal(viewed.data.buffer, bytes.buffer, 'a segment inside one chunk is a view');
  assert.equal(viewed.data.toString(), 'hello');
  const split = new PduFramer({ maxDataSegmentLength: 8192, headerDigest: false, dataDigest: false });
  const head = Buffer.from(bytes.subarray(0, 50));
  const tail = Buffer.from(bytes.subarray(50));
  assert.deepEqual(split.push(head), []);
  const [copied] = split.push(tail);
  assert.equal(copied.bhs.readUInt32BE(16), 1);
  head.fill(0);
  tail.fill(0);
  assert.equal(copied.data.toString(), 'hello', 'a segment split across chunks is a copy');
});
