import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { test } from 'node:test';
import { ReplicaClient } from '../../../src/replica/client/replica-client';
import { ReplicaControlClient } from '../../../src/replica/client/control-client';
import { TRIREME_ENTRY } from '../../support/trireme-cli';


test('an export from a replica that freezes (SIGSTOP, no reset) fails by keepalive instead of hanging', { timeout: 60_000 }, async () => {
  const child = spawn(process.execPath, [TRIREME_ENTRY, 'replica', '--memory', '--size', '256M', '--listen', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const port = await new Promise<number>((ok, fail) => {
      child.stdout.once('data', (c: Buffer) => ok((JSON.parse(c.toString()) as { dataPort: number }).dataPort));
      child.once('exit', (code) => fail(new Error(`replica exited with ${code}`)));
    });
    const data = await ReplicaClient.connect({ host: '127.0.0.1', port });
    const chunk = Buffer.alloc(1024 * 1024, 9);
    for (let i = 0; i < 48; i++) await data.write(0, i + 1, i * chunk.length, chunk);
    data.close();
    const control = new ReplicaControlClient(`127.0.0.1:${port}`, { keepaliveTimeMs: 500, keepaliveTimeoutMs: 500 });
    try {
      const iterator = control.exportRecords(0)[Symbol.asyncIterator]();
      await iterator.next();
      child.kill('SIGSTOP');
      const started = Date.now();
      let received = 1;
      const err = await (async () => {
        try {
          while (!(await iterator.next()).done) received++;
        } catch (e) {
          return e as { code: string };
        }
        return undefined;
      })();
      assert.ok(err, `the stream must fail, not complete (${received} of 48 records arrived)`);
      assert.match(err.code, /^ERR_GRPC_(UNAVAILABLE|INTERNAL|CANCELLED)$/);
      assert.ok(Date.now() - started < 20_000, 'detected within the keepalive period');
    } finally {
      control.close();
    }
  } finally {
    child.kill('SIGKILL');
  }
});
