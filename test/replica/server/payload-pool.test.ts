import assert from 'node:assert/strict';
import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { MIN_POOLED, PayloadPool } from '../../../src/replica/server/payload-pool';

const MIB = 1024 * 1024;

test('a buffer given back is handed out again, as a view of exactly the asked length', () => {
  const pool = new PayloadPool(8 * MIB, 60_000);
  try {
    const a = pool.take(MIB - 4096);
    assert.equal(a.length, MIB - 4096);
    pool.give(a);
    assert.equal(pool.heldBytes, MIB, 'kept in its power-of-two class');
    const b = pool.take(MIB);
    assert.equal(b.buffer, a.buffer, 'the same memory, reused');
    assert.equal(b.length, MIB);
    assert.equal(pool.heldBytes, 0);
    const c = pool.take(MIB);
    assert.notEqual(c.buffer, b.buffer, 'a buffer still lent out is never handed out twice');
  } finally {
    pool.close();
  }
});

test('small payloads and foreign buffers are not pooled', () => {
  const pool = new PayloadPool(8 * MIB, 60_000);
  try {
    const small = pool.take(MIN_POOLED - 4096);
    pool.give(small);
    pool.give(Buffer.alloc(MIB));
    const lent = pool.take(MIB);
    pool.give(lent.subarray(0, 4096));
    assert.equal(pool.heldBytes, 0, 'only buffers this pool lent, as lent, come back');
    pool.give(lent);
    pool.give(lent);
    assert.equal(pool.heldBytes, MIB, 'a second give of the same buffer is ignored');
  } finally {
    pool.close();
  }
});

test('free memory is bounded and dropped when the pool sits unused', async () => {
  const pool = new PayloadPool(2 * MIB, 30);
  try {
    const lent = [pool.take(MIB), pool.take(MIB), pool.take(MIB)];
    for (const b of lent) pool.give(b);
    assert.equal(pool.heldBytes, 2 * MIB, 'at most maxFreeBytes kept');
    for (let i = 0; i < 50 && pool.heldBytes > 0; i++) await sleep(10);
    assert.equal(pool.heldBytes, 0, 'an idle pool lets go of its buffers');
  } finally {
    pool.close();
  }
});
