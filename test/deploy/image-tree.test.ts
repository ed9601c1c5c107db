import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { freePort, tryConnect } from '../support/portal';
import { REPO } from './kustomize';

const run = promisify(execFile);

/**
 * No Docker engine runs on these machines, so the image is never built here.
 * What can still go wrong in it is checked on the same file tree its final
 * stage holds: package.json, node_modules pruned to production dependencies
 * (`npm prune --omit=dev`, as the build stage does), dist/src, proto and the
 * entry point, run as the image's user 10001. A runtime import of a
 * devDependency, a file the image does not carry, or a write outside the data
 * directory shows up as a role that fails to start.
 */
const IMAGE_USER = 10001;
const asRoot = process.getuid?.() === 0;
let root = '';
let app = '';
const children: ChildProcess[] = [];

before(async () => {
  root = mkdtempSync(join(tmpdir(), 'trireme-image-'));
  chmodSync(root, 0o755);
  app = join(root, 'app');
  mkdirSync(join(app, 'dist'), { recursive: true });
  mkdirSync(join(app, 'deploy'));
  for (const f of ['package.json', 'package-lock.json']) cpSync(join(REPO, f), join(app, f));
  cpSync(join(REPO, 'node_modules'), join(app, 'node_modules'), { recursive: true, verbatimSymlinks: true });
  cpSync(join(REPO, 'dist', 'src'), join(app, 'dist', 'src'), { recursive: true });
  cpSync(join(REPO, 'proto'), join(app, 'proto'), { recursive: true });
  cpSync(join(REPO, 'deploy', 'entrypoint.js'), join(app, 'deploy', 'entrypoint.js'));
  await run('npm', ['prune', '--omit=dev', '--offline', '--no-audit', '--no-fund'], { cwd: app, timeout: 120_000 });
});

after(() => {
  for (const child of children) child.kill('SIGKILL');
  if (root) rmSync(root, { recursive: true, force: true });
});

/** Starts a role from the image tree, as the image's user when this test runs as root (as CI does). */
function startRole(args: readonly string[], options: { asImageUser: boolean }): { child: ChildProcess; output: () => string } {
  const ids = asRoot && options.asImageUser ? { uid: IMAGE_USER, gid: IMAGE_USER } : {};
  const child = spawn(process.execPath, [join(app, 'deploy', 'entrypoint.js'), ...args], { cwd: app, ...ids, env: { PATH: process.env.PATH, HOME: '/nonexistent', NODE_ENV: 'production' } });
  children.push(child);
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return { child, output: () => out.slice(-3000) };
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, { timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, role: { child: ChildProcess; output: () => string }, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (role.child.exitCode !== null) assert.fail(`${what}: the process exited ${role.child.exitCode}: ${role.output()}`);
    if (await check()) return;
    await sleep(200);
  }
  assert.fail(`${what} within ${timeoutMs} ms: ${role.output()}`);
}

async function stop(role: { child: ChildProcess }): Promise<number | null> {
  if (role.child.exitCode !== null) return role.child.exitCode;
  const exited = new Promise<number | null>((resolve) => role.child.once('exit', (code) => resolve(code)));
  role.child.kill('SIGTERM');
  return Promise.race([exited, sleep(15_000).then(() => 'timeout' as const)]).then((r) => (r === 'timeout' ? assert.fail('no exit within 15 s of SIGTERM') : r));
}

test('the pruned tree holds every production package of the lockfile and no development-only one', () => {
  // package-lock.json marks packages only development dependencies reach with "dev": true.
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; optional?: boolean }> };
  const installed = Object.entries(lock.packages).filter(([path]) => path.startsWith('node_modules/'));
  const devOnly = installed.filter(([, meta]) => meta.dev === true);
  const production = installed.filter(([, meta]) => meta.dev !== true && meta.optional !== true);
  assert.ok(devOnly.some(([path]) => path === 'node_modules/typescript'), 'the lockfile marks typescript as development-only');
  for (const [path] of production) assert.ok(existsSync(join(app, path, 'package.json')), `${path} is missing`);
  for (const [path] of devOnly) assert.ok(!existsSync(join(app, path)), `${path} is still there`);
});

test('a replica and a controller serve a volume from the image tree as the image user', { timeout: 120_000 }, async () => {
  const data = join(root, 'replica-data');
  mkdirSync(data);
  if (asRoot) chownSync(data, IMAGE_USER, IMAGE_USER);
  const [dataPort, replicaMetrics, portal, management, controllerMetrics] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);

  const replica = startRole(['replica', '--dir', data, '--listen', `127.0.0.1:${dataPort}`, '--size', '64M', '--metrics', `127.0.0.1:${replicaMetrics}`], { asImageUser: true });
  await waitFor('replica /healthz', async () => (await httpStatus(`http://127.0.0.1:${replicaMetrics}/healthz`)) === 200, replica);

  const controller = startRole(
    ['controller', '--volume', 'image-check', '--size', '64M', '--replica', `127.0.0.1:${dataPort}`, '--portal', `127.0.0.1:${portal}`, '--management', `127.0.0.1:${management}`, '--metrics', `127.0.0.1:${controllerMetrics}`],
    { asImageUser: true },
  );
  await waitFor('controller /healthz', async () => (await httpStatus(`http://127.0.0.1:${controllerMetrics}/healthz`)) === 200, controller);
  await waitFor('iSCSI portal', () => tryConnect('127.0.0.1', portal), controller);
  const metrics = await new Promise<string>((resolve, reject) => {
    get(`http://127.0.0.1:${controllerMetrics}/metrics`, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    }).on('error', reject);
  });
  assert.match(metrics, /^trireme_/m, 'the controller exports trireme_ metrics');

  assert.equal(await stop(controller), 0, controller.output());
  assert.equal(await stop(replica), 0, replica.output());
});

test('the CSI node plugin starts from the image tree (as root, like its DaemonSet)', { timeout: 60_000 }, async () => {
  const socket = join(root, 'csi', 'csi.sock');
  mkdirSync(join(root, 'csi'));
  const node = startRole(['csi', '--endpoint', `unix://${socket}`, '--mode', 'node', '--node-id', 'image-node', '--state-dir', join(root, 'node-state')], { asImageUser: false });
  await waitFor('CSI socket', async () => existsSync(socket), node);
  assert.equal(await stop(node), 0, node.output());
});
