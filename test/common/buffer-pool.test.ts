import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferPool } from '../../src/common/buffer-pool';
import { releaseIdleMemory } from '../../src/common/idle-collector';

const MIB = 1024 * 1024;
const MIN_POOLED = 64 * 1024;

test('a buffer given back is handed out again, as a view of exactly the asked length', () => {
  const pool = new BufferPool({ minPooled: MIN_POOLED, maxKept: 8 * MIB });
  try {
    const a = pool.take(MIB - 4096);
    assert.equal(a.length, MIB - 4096);
    pool.give(a);
    assert.equal(pool.keptBytes, MIB, 'kept in its 64 KiB class');
    const b = pool.take(MIB);
    assert.equal(b.buffer, a.buffer, 'the same memory, reused');
    assert.equal(b.length, MIB);
    assert.equal(pool.keptBytes, 0);
    const c = pool.take(MIB);
    assert.notEqual(c.buffer, b.buffer, 'a buffer still lent out is never handed out twice');
  } finally {
    pool.close();
  }
});

test('small payloads and foreign buffers are not pooled', () => {
  const pool = new BufferPool({ minPooled: MIN_POOLED, maxKept: 8 * MIB });
  try {
    const small = pool.take(MIN_POOLED - 4096);
    pool.give(small);
    pool.give(Buffer.alloc(MIB));
    const lent = pool.take(MIB);
    pool.give(lent.subarray(0, 4096));
    assert.equal(pool.keptBytes, 0, 'only buffers this pool lent, as lent, come back');
    pool.give(lent);
    pool.give(lent);
    assert.equal(pool.keptBytes, MIB, 'a second give of the same buffer is ignored');
  } finally {
    pool.close();
  }
});

test('free memory is bounded and dropped when the process turns idle', () => {
  const pool = new BufferPool({ minPooled: MIN_POOLED, maxKept: 2 * MIB });
  try {
    const lent = [pool.take(MIB), pool.take(MIB), pool.take(MIB)];
    for (const b of lent) pool.give(b);
    assert.equal(pool.keptBytes, 2 * MIB, 'at most maxFreeBytes kept');
    // What the idle collector runs before its collection (src/common/idle-collector.ts).
    releaseIdleMemory();
    assert.equal(pool.keptBytes, 0, 'the idle release empties the pool');
  } finally {
    pool.close();
  }
});

test('a closed pool keeps nothing and leaves the idle release', () => {
  const pool = new BufferPool({ minPooled: MIN_POOLED, maxKept: 8 * MIB });
  const lent = pool.take(MIB);
  pool.close();
  assert.equal(pool.keptBytes, 0);
  pool.give(lent);
  assert.equal(pool.keptBytes, MIB, 'a buffer still lent when the pool closed comes back');
  releaseIdleMemory();
  assert.equal(pool.keptBytes, MIB, 'a closed pool is no longer released at idle');
});
