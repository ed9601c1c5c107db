import assert from 'node:assert/strict';
import { spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { ManagementClient } from '../../src/controller/management/management-client';
import type { VolumeStatusView } from '../../src/controller/management/volume-control';
import { requireTools } from '../support/host-tools';
import { qemuIo, randomPortBase, startTrireme, stopProcess, until } from './stack-helpers';
import { TRIREME_ENTRY } from '../support/trireme-cli';

// Each replica in its own network namespace with its own address, the
// controller in the root namespace: links are cut by taking the host end of a
// veth pair down (packets vanish, no reset), the way a switch port or a cable
// fails, and healed by bringing it back.
const TOOLS = { ip: 'iproute2', 'qemu-io': 'qemu-utils', 'qemu-img': 'qemu-utils' };
const MiB = 1024 * 1024;
const SIZE = 32 * MiB;
const tag = `trm${process.pid % 100000}`;
const net = 100 + (process.pid % 100);
const dir = mkdtempSync(join(tmpdir(), 'trireme-netns-'));
const namespaces = [0, 1, 2].map((i) => ({ ns: `${tag}n${i}`, veth: `${tag}v${i}`, host: `10.${net}.${i}.1`, replica: `10.${net}.${i}.2` }));
const processes: ChildProcess[] = [];
const expected = Buffer.alloc(SIZE);
let management: ManagementClient | undefined;

function ip(...args: string[]): void {
  const result = spawnSync('ip', args, { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`ip ${args.join(' ')}: ${result.stderr}`);
}

function setUpNetwork(): void {
  for (const n of namespaces) {
    ip('netns', 'add', n.ns);
    ip('link', 'add', n.veth, 'type', 'veth', 'peer', 'name', `${n.veth}p`);
    ip('link', 'set', `${n.veth}p`, 'netns', n.ns);
    ip('addr', 'add', `${n.host}/30`, 'dev', n.veth);
    ip('link', 'set', n.veth, 'up');
    ip('netns', 'exec', n.ns, 'ip', 'addr', 'add', `${n.replica}/30`, 'dev', `${n.veth}p`);
    ip('netns', 'exec', n.ns, 'ip', 'link', 'set', `${n.veth}p`, 'up');
    ip('netns', 'exec', n.ns, 'ip', 'link', 'set', 'lo', 'up');
  }
}

after(async () => {
  management?.close();
  await Promise.all(processes.map((p) => stopProcess(p, 5000)));
  for (const n of namespaces) {
    spawnSync('ip', ['link', 'del', n.veth]);
    spawnSync('ip', ['netns', 'del', n.ns]);
  }
  rmSync(dir, { recursive: true, force: true });
});

const status = (): Promise<VolumeStatusView> => (management as ManagementClient).status();

test('cut links: one replica is dropped and rebuilt after healing; two cut stop writes but not reads', { timeout: 240_000 }, async (t) => {
  if (!requireTools(t, TOOLS)) return;
  if (process.getuid?.() !== 0) {
    if (process.env.CI === 'true') throw new Error('network namespaces need root');
    t.skip('network namespaces need root');
    return;
  }
  setUpNetwork();
  const bin = TRIREME_ENTRY;
  for (const [i, n] of namespaces.entries()) {
    // `ip netns exec` execs the command in place: the child is the replica itself.
    const replica = await startTrireme(['replica', '--dir', join(dir, `replica-${i}`), '--listen', `${n.replica}:9700`, '--size', String(SIZE)], /"event":"ready"/, 60_000, ['ip', 'netns', 'exec', n.ns, process.execPath, bin]);
    processes.push(replica.child);
  }
  const base = randomPortBase();
  const args = ['controller', '--volume', 'netns', '--size', String(SIZE), '--op-timeout', '2000', '--portal', `127.0.0.1:${base}`, '--management', `127.0.0.1:${base + 1}`, '--metrics', `127.0.0.1:${base + 2}`];
  for (const n of namespaces) args.push('--replica', `${n.replica}:9700`);
  const controller = await startTrireme(args, /"event":"ready"/);
  processes.push(controller.child);
  management = new ManagementClient(`127.0.0.1:${base + 1}`, 10_000);
  const url = `iscsi://127.0.0.1:${base}/iqn.2026-11.io.trireme:netns/0`;
  const write = (pattern: number, offset: number, length: number): void => {
    qemuIo(url, `write -P 0x${pattern.toString(16)} ${offset} ${length}`);
    expected.fill(pattern, offset, offset + length);
  };

  write(0x21, 0, 4 * MiB);
  ip('link', 'set', namespaces[0].veth, 'down');
  const t0 = Date.now();
  write(0x22, 4 * MiB, 2 * MiB);
  assert.ok(Date.now() - t0 < 15_000, 'writes go on within the drop timeout');
  await until('cut replica in ERR', status, (s) => s.replicas[0].mode === 'ERR', 15_000);
  write(0x23, 8 * MiB, MiB);
  ip('link', 'set', namespaces[0].veth, 'up');
  await until('healed replica back to RW', status, (s) => s.replicas.every((r) => r.mode === 'RW'), 90_000);

  ip('link', 'set', namespaces[1].veth, 'down');
  ip('link', 'set', namespaces[2].veth, 'down');
  // The failed write's range is undefined until written again (0x25 below covers it).
  assert.throws(() => qemuIo(url, `write -P 0x24 ${12 * MiB} 64k`), /failed|error/i);
  qemuIo(url, `read -P 0x21 0 1M`);
  ip('link', 'set', namespaces[1].veth, 'up');
  ip('link', 'set', namespaces[2].veth, 'up');
  await until('all RW again', status, (s) => s.replicas.every((r) => r.mode === 'RW'), 90_000);
  write(0x25, 12 * MiB, MiB);

  const image = join(dir, 'expected.img');
  writeFileSync(image, expected);
  const compare = spawnSync('qemu-img', ['compare', '-f', 'raw', '-F', 'raw', image, url], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(compare.status, 0, `${compare.stdout}${compare.stderr}`);
});
