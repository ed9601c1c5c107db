import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, test } from 'node:test';
import { status } from '@grpc/grpc-js';
import pino from 'pino';
import { Registry } from 'prom-client';
import { identityService, startCsiServer, type RunningCsiServer } from '../../../src/common/csi';
import { controllerService, type Orchestrator } from '../../../src/controller/csi';
import { CsiTestClient, grpcStatus } from '../../node/support/csi-client';
import { mountCap } from './controller-harness';
import { MemoryOrchestrator } from './memory-orchestrator';

const lines: string[] = [];
const registry = new Registry();
let server: RunningCsiServer;
let client: CsiTestClient;
let dir: string;
const orchestrator = new MemoryOrchestrator(1024 ** 4, 1024 ** 4);
/** An orchestrator whose listVolumes fails like a bug would: with internals in the message. */
const broken: Orchestrator = Object.assign(Object.create(orchestrator) as Orchestrator, {
  listVolumes: async () => {
    throw new TypeError('cannot read properties of undefined (reading "replicas") at /srv/internal/path.ts:42');
  },
});

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'trireme-csi-wrap-'));
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  const logger = pino({ level: 'debug' }, sink);
  server = await startCsiServer({
    endpoint: `unix://${join(dir, 'csi.sock')}`,
    identity: identityService({ version: '0.0.0-test', controllerService: true, readinessChecks: [], logger }),
    controller: controllerService(broken),
    logger,
    registry,
  });
  client = new CsiTestClient(server.socketPath);
});

after(async () => {
  client?.close();
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

test('secrets are blanked in every log line, their keys kept', async () => {
  await client.call('Controller', 'CreateVolume', { name: 'with-secrets', volume_capabilities: [mountCap], secrets: { chapSecret: 'hunter2-very-secret', token: 'tok-abc' } });
  const logged = lines.join('\n');
  assert.ok(!logged.includes('hunter2-very-secret'));
  assert.ok(!logged.includes('tok-abc'));
  const call = lines.map((l) => JSON.parse(l) as { msg: string; method?: string; request?: { secrets?: Record<string, string> } }).find((l) => l.msg === 'csi call' && l.method === 'CreateVolume');
  assert.deepEqual(call?.request?.secrets, { chapSecret: '[redacted]', token: '[redacted]' });
});

test('an unexpected failure is INTERNAL with a log reference, never its internals; the server keeps serving', async () => {
  await assert.rejects(client.call('Controller', 'ListVolumes', {}), (err: Error & { code: number; details: string }) => {
    assert.equal(err.code, status.INTERNAL);
    assert.match(err.details, /^internal error, see the driver log for request [0-9a-f-]{36}$/);
    assert.ok(!err.details.includes('/srv/internal'));
    return true;
  });
  const logged = lines.map((l) => JSON.parse(l) as { msg: string; err?: { stack?: string } }).find((l) => l.msg === 'csi call failed');
  assert.match(logged?.err?.stack ?? '', /reading "replicas"/, 'the full error stays in the log');
  const info = await client.call<{ name: string }>('Identity', 'GetPluginInfo');
  assert.equal(info.name, 'csi.trireme.io');
  await assert.rejects(client.call('Controller', 'ControllerGetVolume', {}), grpcStatus(status.INVALID_ARGUMENT));
});

test('calls are counted by method and status', async () => {
  const metrics = await registry.getSingleMetricAsString('trireme_csi_calls_total');
  assert.match(metrics, /trireme_csi_calls_total\{method="ListVolumes",code="INTERNAL"\} 1/);
  assert.match(metrics, /trireme_csi_calls_total\{method="CreateVolume",code="OK"\} 1/);
  assert.match(await registry.getSingleMetricAsString('trireme_csi_call_seconds'), /trireme_csi_call_seconds_count\{method="GetPluginInfo"\} 1/);
});
