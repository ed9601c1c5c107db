import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { VolumeMessage } from '../../src/controller/manager/manager-client';
import { formatDuration, progressBar, renderRebuild } from '../../src/cli/render';
import { renderVolumeList, renderVolumeStatus } from '../../src/cli/volume-command';

const MiB = 1024 * 1024;
const running = (pid: number, restarts = 0, lastExit = '') => ({ state: 'running', pid, restarts, lastExit });

const volume: VolumeMessage = {
  name: 'db',
  sizeBytes: 1024 * MiB,
  replicaCount: 3,
  iqn: 'iqn.2026-11.io.trireme:db',
  portal: '127.0.0.1:3261',
  management: '127.0.0.1:9501',
  metrics: '127.0.0.1:9601',
  createdAt: '2026-11-25T07:00:00.000Z',
  controller: running(100),
  replicas: [
    { index: 0, address: '127.0.0.1:9700', dataDir: '/d/0', process: running(101) },
    { index: 1, address: '127.0.0.1:9701', dataDir: '/d/1', process: running(102, 2, 'signal SIGKILL') },
    { index: 2, address: '127.0.0.1:9702', dataDir: '/d/2', process: { state: 'backoff', pid: 0, restarts: 5, lastExit: 'exit code 1' } },
  ],
  status: {
    volume: 'db',
    sizeBytes: 1024 * MiB,
    state: 'rebuilding',
    epoch: 7,
    seq: 1234,
    iqn: 'iqn.2026-11.io.trireme:db',
    portal: '127.0.0.1:3261',
    sessions: 1,
    replicas: [
      { address: '127.0.0.1:9700', mode: 'RW', error: '', rebuild: null },
      { address: '127.0.0.1:9701', mode: 'WO', error: '', rebuild: { kind: 'delta', bytesDone: 300 * MiB, bytesTotal: 400 * MiB, rateBytesPerSecond: 50 * MiB, etaSeconds: 2 } },
      { address: '127.0.0.1:9702', mode: 'ERR', error: 'ERR_UNREACHABLE', rebuild: null },
    ],
  },
  statusError: '',
};

test('progress bars are fixed width and clamped', () => {
  assert.equal(progressBar(0, 100, 10), '[░░░░░░░░░░] 0%');
  assert.equal(progressBar(75, 100, 10), '[████████░░] 75%');
  assert.equal(progressBar(150, 100, 10), '[██████████] 100%');
  assert.equal(progressBar(5, 0, 4), '[░░░░] 0%');
});

test('durations read as seconds, minutes or hours; unknown as ?', () => {
  assert.equal(formatDuration(9.6), '10s');
  assert.equal(formatDuration(75), '1m15s');
  assert.equal(formatDuration(3 * 3600 + 5 * 60), '3h05m');
  assert.equal(formatDuration(-1), '?');
  assert.equal(formatDuration(Number.NaN), '?');
});

test('volume status shows modes, processes, rebuild progress with rate and ETA', () => {
  const text = renderVolumeStatus(volume);
  assert.match(text, /^volume db {2}1 GiB {2}rebuilding {2}epoch 7 {2}seq 1234 {2}sessions 1$/m);
  assert.match(text, /target iqn\.2026-11\.io\.trireme:db on 127\.0\.0\.1:3261 {3}controller: running pid 100/);
  const rows = text.split('\n').filter((l) => l.includes('127.0.0.1:970'));
  assert.equal(rows.length, 3);
  assert.match(rows[0], /│ 0 +│ 127\.0\.0\.1:9700 │ RW +│ running pid 101 +│ +│/);
  assert.match(rows[1], /WO .*running pid 102 \(2 restarts, last signal SIGKILL\).*delta \[███████████████░░░░░\] 75% 300 MiB\/400 MiB 50 MiB\/s ETA 2s/);
  assert.match(rows[2], /ERR .*backoff \(5 restarts, last exit code 1\).*ERR_UNREACHABLE/);
  assert.match(text, /rebuild finishes in about 2s/);
  assert.equal(renderRebuild(null), '');
});

test('a controller that does not answer is shown as offline with the reason', () => {
  const text = renderVolumeStatus({ ...volume, status: null, statusError: 'controller at 127.0.0.1:9501 is not reachable' });
  assert.match(text, /^volume db {2}1 GiB {2}offline$/m);
  assert.match(text, /controller not answering: controller at 127\.0\.0\.1:9501 is not reachable/);
  assert.match(text, /│ 1 +│ 127\.0\.0\.1:9701 │ - +│/);
});

test('volume list: one row per volume; an empty list says how to create one', () => {
  const text = renderVolumeList([volume, { ...volume, name: 'web', status: null }]);
  assert.match(text, /│ db +│ 1 GiB +│ rebuilding │ 3 +│ 127\.0\.0\.1:3261 │ iqn\.2026-11\.io\.trireme:db/);
  assert.match(text, /│ web +│ 1 GiB +│ offline/);
  assert.match(renderVolumeList([]), /no volumes \(create one with `trireme volume create NAME --size SIZE`\)/);
});
