import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseHostPort } from '../../src/common/host-port';
import { formatSize, parseSize } from '../../src/common/size';

test('parseSize reads plain and binary-unit sizes', () => {
  assert.equal(parseSize('4096'), 4096);
  assert.equal(parseSize('64M'), 64 * 1024 * 1024);
  assert.equal(parseSize('4GiB'), 4 * 1024 ** 3);
  assert.equal(parseSize(' 1t '), 1024 ** 4);
});

test('parseSize rejects garbage with a clear error code', () => {
  for (const bad of ['', 'abc', '-1G', '1.5G', '10X', '99999999999999999999T']) {
    assert.throws(() => parseSize(bad), { code: 'ERR_INVALID_ARGUMENT' }, bad);
  }
});

test('formatSize prints binary units', () => {
  assert.equal(formatSize(512), '512 B');
  assert.equal(formatSize(1536), '1.5 KiB');
  assert.equal(formatSize(4 * 1024 ** 3), '4 GiB');
});

test('parseHostPort handles v4, v6, wildcard and defaults', () => {
  assert.deepEqual(parseHostPort('127.0.0.1:3260'), { host: '127.0.0.1', port: 3260 });
  assert.deepEqual(parseHostPort('[::1]:9700'), { host: '::1', port: 9700 });
  assert.deepEqual(parseHostPort(':9700'), { host: '0.0.0.0', port: 9700 });
  assert.deepEqual(parseHostPort('localhost', 3260), { host: 'localhost', port: 3260 });
  assert.throws(() => parseHostPort('localhost'), { code: 'ERR_INVALID_ARGUMENT' });
  assert.throws(() => parseHostPort('h:70000'), { code: 'ERR_INVALID_ARGUMENT' });
});
