import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ReplicaClient } from '../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../src/replica/client/control-client';
import { TRIREME_ENTRY } from '../support/trireme-cli';

// The CLI of this build, as bin/trireme.js runs it minus its build-on-first-use step.

function trireme(args: string[]): { child: ReturnType<typeof spawn>; ready: Promise<Record<string, number | string | null>>; exit: Promise<{ code: number | null; stderr: string; stdout: string }> } {
  const child = spawn(process.execPath, [TRIREME_ENTRY, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const ready = new Promise<Record<string, number | string | null>>((resolveReady, reject) => {
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString();
      const line = stdout.split('\n').find((l) => l.includes('"event":"ready"'));
      if (line) resolveReady(JSON.parse(line) as Record<string, number | string | null>);
    });
    child.once('exit', () => reject(new Error(`exited before ready: ${stderr}`)));
  });
  ready.catch(() => undefined);
  const exit = new Promise<{ code: number | null; stderr: string; stdout: string }>((r) => child.once('exit', (code) => r({ code, stderr, stdout })));
  return { child, ready, exit };
}

const dirs: string[] = [];
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test('`trireme replica serve` with every listener prints its ports, serves, and stops cleanly on SIGTERM', { timeout: 60_000 }, async () => {
  const run = trireme(['replica', 'serve', '--memory', '--size', '1M', '--volume-id', 'v1', '--listen', '127.0.0.1:0', '--grpc', '127.0.0.1:0', '--metrics', '127.0.0.1:0']);
  const ready = await run.ready;
  assert.equal(ready.volumeId, 'v1');
  const client = await ReplicaClient.connect({ host: '127.0.0.1', port: ready.dataPort as number, volumeId: 'v1' });
  const control = new ReplicaControlClient(`127.0.0.1:${ready.grpcPort}`);
  try {
    await client.write(0, 1, 0, Buffer.alloc(4096, 1));
    assert.equal((await control.status()).lastSeq, 1);
    assert.equal((await fetch(`http://127.0.0.1:${ready.httpPort}/healthz`)).status, 200);
  } finally {
    client.close();
    control.close();
  }
  run.child.kill('SIGTERM');
  const { code, stderr } = await run.exit;
  assert.equal(code, 0, stderr);
  assert.match(stderr, /"msg":"replica stopped"/);
});

test('`trireme replica --dir` creates a replica, and reopens it without --size', { timeout: 60_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'trireme-cli-'));
  dirs.push(base);
  const dir = join(base, 'r');
  const first = trireme(['replica', '--dir', dir, '--listen', '127.0.0.1:0', '--size', '8M']);
  const r1 = await first.ready;
  first.child.kill('SIGTERM');
  const e1 = await first.exit;
  assert.equal(e1.code, 0, e1.stderr);
  const second = trireme(['replica', '--dir', dir, '--listen', '127.0.0.1:0']);
  const r2 = await second.ready;
  assert.equal(r2.replicaId, r1.replicaId, 'same replica');
  second.child.kill('SIGTERM');
  const e2 = await second.exit;
  assert.equal(e2.code, 0, e2.stderr);
});

test('bad invocations fail with a clear message and a non-zero exit', { timeout: 60_000 }, async () => {
  const base = mkdtempSync(join(tmpdir(), 'trireme-cli-'));
  dirs.push(base);
  const noSize = await trireme(['replica', '--dir', join(base, 'empty'), '--listen', '127.0.0.1:0']).exit;
  assert.equal(noSize.code, 1);
  assert.match(noSize.stderr, /needs a size/);
  const badListen = await trireme(['replica', '--memory', '--size', '1M', '--listen', 'nowhere:99999']).exit;
  assert.equal(badListen.code, 1);
  assert.match(badListen.stderr, /port must be 0-65535/);
  const both = await trireme(['replica', '--memory', '--dir', join(base, 'x'), '--size', '1M']).exit;
  assert.equal(both.code, 1);
  assert.match(both.stderr, /exclude each other/);
  const bare = await trireme(['replica']).exit;
  assert.notEqual(bare.code, 0);
  assert.match(bare.stderr, /Usage: trireme replica/);
});
