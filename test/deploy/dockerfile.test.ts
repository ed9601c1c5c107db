import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { test } from 'node:test';
import { REPO } from './kustomize';

const run = promisify(execFile);

/**
 * No Docker engine runs here, so the image cannot be built in CI: this checks
 * what can be checked without one: the stages, the base, the user, that every
 * file the build copies exists, and that the image's entry point runs the CLI.
 */
const dockerfile = readFileSync(join(REPO, 'deploy/Dockerfile'), 'utf8');
const instructions = dockerfile
  .replace(/\\\n/g, ' ')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

test('multi-stage on node:20-bookworm-slim, final stage non-root', () => {
  assert.ok(instructions.includes('ARG NODE_IMAGE=node:20-bookworm-slim'));
  const stages = instructions.filter((l) => l.startsWith('FROM '));
  assert.deepEqual(stages, ['FROM ${NODE_IMAGE} AS build', 'FROM ${NODE_IMAGE}']);
  const finalStage = instructions.slice(instructions.lastIndexOf('FROM ${NODE_IMAGE}'));
  const user = finalStage.filter((l) => l.startsWith('USER ')).pop();
  assert.equal(user, 'USER 10001:10001');
  assert.ok(finalStage.some((l) => l.includes('command -v nsenter')), 'the node plugin needs nsenter');
  assert.ok(!finalStage.some((l) => /COPY (?!--from).*\b(src|test)\b/.test(l)), 'no sources in the final image');
});

test('every file the build copies from the context exists and is not ignored', () => {
  const ignored = readFileSync(join(REPO, 'deploy/Dockerfile.dockerignore'), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'));
  const copies = instructions.filter((l) => l.startsWith('COPY ') && !l.includes('--from='));
  assert.ok(copies.length >= 4);
  for (const c of copies) {
    const parts = c.split(/\s+/).slice(1, -1);
    for (const p of parts) {
      assert.ok(existsSync(join(REPO, p)), `${p} is missing`);
      assert.ok(!ignored.includes(p.split('/')[0]), `${p} is excluded by the dockerignore`);
    }
  }
  for (const heavy of ['node_modules', 'dist', '.git']) assert.ok(ignored.includes(heavy), heavy);
});

test('the image entry point runs the trireme CLI', async () => {
  const { stdout } = await run(process.execPath, [join(REPO, 'deploy/entrypoint.js'), '--version'], { timeout: 30_000 });
  const version = (JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string }).version;
  assert.equal(stdout.trim(), version);
  await assert.rejects(run(process.execPath, [join(REPO, 'deploy/entrypoint.js'), 'csi', '--endpoint', 'unix:///nonexistent/x.sock', '--mode', 'controller', '--orchestrator', 'kubernetes'], { timeout: 30_000, env: { ...process.env, TRIREME_NAMESPACE: 'x', TRIREME_IMAGE: '' } }), (err: { stderr: string }) => /TRIREME_IMAGE must name the image/.test(err.stderr));
});
