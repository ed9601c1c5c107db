import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CsiError } from '../../../src/common/csi';
import { DEFAULT_VOLUME_BYTES, sizeForRange } from '../../../src/controller/csi';
import { paginate } from '../../../src/controller/csi/pagination';
import { parseVolumeParameters } from '../../../src/controller/csi/parameters';

const MiB = 1024 * 1024;

test('capacity ranges round up to whole MiB and honour limit_bytes', () => {
  const cases: Array<[string, { required_bytes?: number; limit_bytes?: number } | null, number, number | 'OUT_OF_RANGE']> = [
    ['no range: the default', null, 0, DEFAULT_VOLUME_BYTES],
    ['exact MiB', { required_bytes: 64 * MiB }, 0, 64 * MiB],
    ['one byte rounds up', { required_bytes: 1 }, 0, MiB],
    ['partial MiB rounds up', { required_bytes: 64 * MiB + 1 }, 0, 65 * MiB],
    ['limit only: default capped at the limit, rounded down', { limit_bytes: 100 * MiB + 5 }, 0, 100 * MiB],
    ['limit equal to rounded size', { required_bytes: 3 * MiB - 7, limit_bytes: 3 * MiB }, 0, 3 * MiB],
    ['rounding would pass the limit', { required_bytes: MiB + 1, limit_bytes: MiB + 100 }, 0, 'OUT_OF_RANGE'],
    ['required above limit', { required_bytes: 10 * MiB, limit_bytes: 5 * MiB }, 0, 'OUT_OF_RANGE'],
    ['limit below one MiB', { limit_bytes: 4096 }, 0, 'OUT_OF_RANGE'],
    ['negative', { required_bytes: -1 }, 0, 'OUT_OF_RANGE'],
    ['clone grows to its source', { required_bytes: MiB }, 8 * MiB, 8 * MiB],
    ['clone source above the limit', { required_bytes: MiB, limit_bytes: 4 * MiB }, 8 * MiB, 'OUT_OF_RANGE'],
  ];
  for (const [name, range, minimum, expected] of cases) {
    if (expected === 'OUT_OF_RANGE') {
      assert.throws(() => sizeForRange(range, minimum), (err: CsiError) => err.code === 'ERR_CSI_OUT_OF_RANGE', name);
    } else {
      assert.equal(sizeForRange(range, minimum), expected, name);
    }
  }
});

test('StorageClass parameters: defaults, bounds, unknown keys refused, provisioner metadata ignored', () => {
  assert.deepEqual(parseVolumeParameters({}), { replicaCount: 3, fsType: 'ext4', chap: false });
  assert.deepEqual(parseVolumeParameters({ replicaCount: '5', fsType: 'xfs', chap: 'true', 'csi.storage.k8s.io/pvc/name': 'data' }), { replicaCount: 5, fsType: 'xfs', chap: true });
  const bads: Array<Record<string, string>> = [{ replicaCount: '0' }, { replicaCount: '6' }, { replicaCount: '2.5' }, { replicaCount: 'three' }, { fsType: 'btrfs' }, { chap: 'yes' }, { replicas: '3' }];
  for (const bad of bads) {
    assert.throws(() => parseVolumeParameters(bad), (err: CsiError) => err.code === 'ERR_CSI_INVALID_ARGUMENT', JSON.stringify(bad));
  }
});

test('pagination: pages, next tokens, ABORTED on a bad token', () => {
  const items = ['a', 'b', 'c', 'd', 'e'];
  assert.deepEqual(paginate(items, 2, ''), { page: ['a', 'b'], nextToken: '2' });
  assert.deepEqual(paginate(items, 2, '2'), { page: ['c', 'd'], nextToken: '4' });
  assert.deepEqual(paginate(items, 2, '4'), { page: ['e'], nextToken: '' });
  assert.deepEqual(paginate(items, 0, ''), { page: items, nextToken: '' });
  assert.deepEqual(paginate(items, 10, '5'), { page: [], nextToken: '' });
  for (const token of ['6', 'x', '-1', '1e3', '9999999999']) {
    assert.throws(() => paginate(items, 2, token), (err: CsiError) => err.code === 'ERR_CSI_ABORTED', token);
  }
  assert.throws(() => paginate(items, -1, ''), (err: CsiError) => err.code === 'ERR_CSI_INVALID_ARGUMENT');
});
