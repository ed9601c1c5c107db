import assert from 'node:assert/strict';
import { test } from 'node:test';
import { releaseIdleMemory } from '../../../src/common/idle-collector';
import { BufferPool } from '../../../src/common/buffer-pool';
import { RECORD_POOL } from '../../../src/replica/store/store-core';
import { encodeWrite, recordLength, RecordType } from '../../../src/replica/store/record-codec';
import { BLOCK_SIZE } from '../../../src/replica/store-types';

test('record pool: a given-back buffer is reused for the same size, never while still taken', () => {
  const pool = new BufferPool(RECORD_POOL);
  const n = recordLength(RecordType.Write, 256);
  const a = pool.take(n);
  const b = pool.take(n);
  assert.equal(a.length, n);
  assert.notEqual(a.buffer, b.buffer, 'two records taken together never share memory');
  pool.give(a);
  const c = pool.take(n);
  assert.equal(c.buffer, a.buffer, 'reused once given back');
  assert.notEqual(pool.take(n).buffer, b.buffer, 'b is still taken');
  // Small records come from the ordinary allocator and are not kept.
  const small = pool.take(recordLength(RecordType.Write, 1));
  pool.give(small);
  assert.notEqual(pool.take(small.length).buffer, small.buffer);
  // A buffer the pool did not hand out is ignored.
  pool.give(Buffer.alloc(n));
});

test('record pool: at most 16 MiB waits for reuse', () => {
  const pool = new BufferPool(RECORD_POOL);
  const n = recordLength(RecordType.Write, 256);
  const taken = Array.from({ length: 40 }, () => pool.take(n));
  for (const b of taken) pool.give(b);
  const again = new Set(Array.from({ length: 40 }, () => pool.take(n).buffer));
  const reused = taken.filter((b) => again.has(b.buffer)).length;
  assert.ok(reused > 0 && reused * n <= 16 * 1024 * 1024, `${reused} of 40 reused`);
});

test('encodeWrite into pooled memory writes the same record as into fresh memory', () => {
  const pool = new BufferPool(RECORD_POOL);
  const data = Buffer.alloc(64 * BLOCK_SIZE);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
  const dirty = pool.take(recordLength(RecordType.Write, 64));
  dirty.fill(0xaa);
  pool.give(dirty);
  const pooled = encodeWrite(3, 9, 100, data, (n) => pool.take(n));
  assert.equal(pooled.buffer, dirty.buffer);
  assert.ok(pooled.equals(encodeWrite(3, 9, 100, data)));
});

test('record pool: the idle release drops the kept buffers, never a taken one', () => {
  const pool = new BufferPool(RECORD_POOL);
  const n = recordLength(RecordType.Write, 256);
  const kept = pool.take(n);
  const held = pool.take(n);
  held.fill(0x5c);
  pool.give(kept);
  assert.ok(pool.keptBytes >= n);
  // What the idle collector runs before its collection (src/common/idle-collector.ts).
  releaseIdleMemory();
  assert.equal(pool.keptBytes, 0);
  const next = pool.take(n);
  assert.notEqual(next.buffer, kept.buffer, 'a released buffer is not handed out again');
  assert.notEqual(next.buffer, held.buffer);
  assert.ok(held.every((b) => b === 0x5c), 'a taken buffer is untouched by the release');
  // The pool works as before after a release.
  pool.give(next);
  assert.equal(pool.take(n).buffer, next.buffer);
});

test('record pool: a smaller bound keeps fewer bytes', () => {
  const pool = new BufferPool({ ...RECORD_POOL, maxKept: 4 * 1024 * 1024 });
  const n = recordLength(RecordType.Write, 256);
  const taken = Array.from({ length: 10 }, () => pool.take(n));
  for (const b of taken) pool.give(b);
  assert.ok(pool.keptBytes > 0 && pool.keptBytes <= 4 * 1024 * 1024, `${pool.keptBytes} bytes kept`);
});
