import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { decodeRecordHeader, RECORD_HEADER_SIZE, SEGMENT_HEADER_SIZE } from '../../../src/replica/store/record-codec';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { CRASH_VOLUME, crashModel } from './crash-workload';
import { open, pattern, tempDir } from './helpers';

const dirs: string[] = [];
after(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));
const SEED = 4242;
const COUNT = 60;

/** A replica whose writes 1..COUNT are flushed but never checkpointed (its writer was SIGKILLed). */
async function killedReplica(): Promise<string> {
  const dir = tempDir('trireme-corrupt-');
  dirs.push(dir);
  await new Promise<void>((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(__dirname, 'crash-child.js'), '--write-and-wait', dir, String(SEED), String(COUNT)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready\n')) child.kill('SIGKILL');
    });
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code, signal) => (signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited with ${code} before getting ready: ${err}`))));
  });
  return dir;
}

function segmentFile(dir: string): string {
  const files = fs.readdirSync(path.join(dir, 'segments')).sort();
  return path.join(dir, 'segments', files[files.length - 1]);
}

/** Offsets of the records of a segment file, in order. */
function records(file: string): { offset: number; len: number }[] {
  const buf = fs.readFileSync(file);
  const out: { offset: number; len: number }[] = [];
  let pos = SEGMENT_HEADER_SIZE;
  while (pos + RECORD_HEADER_SIZE <= buf.length) {
    const h = decodeRecordHeader(buf.subarray(pos, pos + RECORD_HEADER_SIZE));
    if (typeof h === 'string') break;
    out.push({ offset: pos, len: h.totalLen });
    pos += h.totalLen;
  }
  return out;
}

async function assertImage(dir: string, lastSeq: number): Promise<void> {
  const s = await open(dir);
  try {
    assert.equal(s.info().state, 'ok', s.info().error);
    assert.equal(s.info().lastSeq, lastSeq);
    const model = crashModel(SEED, lastSeq);
    const image = await s.read(0, CRASH_VOLUME);
    for (let lba = 0; lba < CRASH_VOLUME / BLOCK_SIZE; lba++) {
      const seq = model.get(lba);
      const want = seq === undefined ? Buffer.alloc(BLOCK_SIZE) : pattern(seq, lba);
      assert.ok(image.subarray(lba * BLOCK_SIZE, (lba + 1) * BLOCK_SIZE).equals(want), `lba ${lba}`);
    }
    // Still writable after the cut: the next append lands where the torn record was.
    await s.write(0, lastSeq + 1, 0, pattern(999, 0));
    await s.flush(0);
  } finally {
    await s.close();
  }
  const again = await open(dir);
  assert.deepEqual(await again.read(0, BLOCK_SIZE), pattern(999, 0));
  await again.close();
}

test('a torn tail (record cut short) is cut back to the last good record', async () => {
  const dir = await killedReplica();
  const file = segmentFile(dir);
  const recs = records(file);
  assert.equal(recs.length, COUNT);
  const lastRec = recs[recs.length - 1];
  fs.truncateSync(file, lastRec.offset + Math.floor(lastRec.len / 2));
  await assertImage(dir, COUNT - 1);
});

test('garbage after the last record is cut off', async () => {
  const dir = await killedReplica();
  const file = segmentFile(dir);
  const size = fs.statSync(file).size;
  fs.appendFileSync(file, Buffer.from(Array.from({ length: 10000 }, (_, i) => (i * 7919) & 0xff)));
  await assertImage(dir, COUNT);
  assert.ok(fs.statSync(file).size >= size);
});

async function assertRefuses(dir: string): Promise<void> {
  const s = await open(dir);
  try {
    const info = s.info();
    assert.equal(info.state, 'error');
    assert.match(info.error ?? '', /bad|crc|corrupt/i);
    await assert.rejects(s.read(0, CRASH_VOLUME), { code: 'ERR_CORRUPT' });
    await assert.rejects(s.write(0, COUNT + 1, 0, Buffer.alloc(BLOCK_SIZE)), { code: 'ERR_CORRUPT' });
  } finally {
    await s.close();
  }
}

test('a flipped byte in a middle record (log tail) puts the replica in error state', async () => {
  const dir = await killedReplica();
  const file = segmentFile(dir);
  const mid = records(file)[COUNT / 2];
  const fd = fs.openSync(file, 'r+');
  const at = mid.offset + RECORD_HEADER_SIZE + 100;
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, at);
  b[0] ^= 0x40;
  fs.writeSync(fd, b, 0, 1, at);
  fs.closeSync(fd);
  await assertRefuses(dir);
});

test('a flipped byte in a checkpointed record is caught at open and on read', async () => {
  const dir = await killedReplica();
  const clean = await open(dir);
  await clean.close();
  const file = segmentFile(dir);
  const mid = records(file)[10];
  const fd = fs.openSync(file, 'r+');
  const b = Buffer.alloc(1);
  fs.readSync(fd, b, 0, 1, mid.offset + RECORD_HEADER_SIZE + 5);
  b[0] ^= 0x01;
  fs.writeSync(fd, b, 0, 1, mid.offset + RECORD_HEADER_SIZE + 5);
  fs.closeSync(fd);
  await assertRefuses(dir);
});

test('a damaged record header in the middle is corruption, not a torn tail', async () => {
  const dir = await killedReplica();
  const file = segmentFile(dir);
  const mid = records(file)[COUNT / 3];
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from([0xde, 0xad]), 0, 2, mid.offset + 24);
  fs.closeSync(fd);
  await assertRefuses(dir);
});

test('a block damaged under a running replica is refused on read, never returned', async () => {
  const dir = tempDir('trireme-corrupt-');
  dirs.push(dir);
  const s = await open(dir, { size: CRASH_VOLUME });
  await s.write(0, 1, 0, pattern(1, 0, 8));
  await s.write(0, 2, 64 * BLOCK_SIZE, pattern(2, 64, 1));
  await s.flush(0);
  const file = segmentFile(dir);
  const first = records(file)[0];
  const fd = fs.openSync(file, 'r+');
  fs.writeSync(fd, Buffer.from('rot'), 0, 3, first.offset + RECORD_HEADER_SIZE + 3 * (BLOCK_SIZE + 4) + 1000);
  fs.closeSync(fd);
  assert.deepEqual(await s.read(0, 3 * BLOCK_SIZE), pattern(1, 0, 3), 'blocks before the damage are fine');
  await assert.rejects(s.read(3 * BLOCK_SIZE, BLOCK_SIZE), { code: 'ERR_CORRUPT' });
  assert.equal(s.info().state, 'error');
  await assert.rejects(s.read(64 * BLOCK_SIZE, BLOCK_SIZE), { code: 'ERR_CORRUPT' }, 'an error-state replica serves nothing');
  await s.close();
});
