'use strict';
// Makes a fresh checkout runnable: installs the locked npm packages and compiles
// TypeScript when the sources are newer than the build. Plain JavaScript with no
// dependencies, because it runs before any exist.
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const stampFile = path.join(root, 'dist', '.build-stamp');

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestMtime(full));
    else if (entry.name.endsWith('.ts') || entry.name.endsWith('.proto')) newest = Math.max(newest, fs.statSync(full).mtimeMs);
  }
  return newest;
}

function ensureInstalled() {
  const marker = path.join(root, 'node_modules', '.package-lock.json');
  const lock = path.join(root, 'package-lock.json');
  if (fs.existsSync(marker) && fs.statSync(marker).mtimeMs >= fs.statSync(lock).mtimeMs) return;
  process.stderr.write('trireme: installing npm packages (npm ci)\n');
  execFileSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

function ensureBuilt() {
  ensureInstalled();
  const sources = ['src', 'test', 'bench', 'proto'].map((d) => path.join(root, d)).filter((d) => fs.existsSync(d));
  const newest = Math.max(fs.statSync(path.join(root, 'tsconfig.json')).mtimeMs, ...sources.map(newestMtime));
  if (fs.existsSync(stampFile) && fs.statSync(stampFile).mtimeMs >= newest) return;
  process.stderr.write('trireme: compiling TypeScript\n');
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', path.join(root, 'tsconfig.json')], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  fs.writeFileSync(stampFile, new Date().toISOString() + '\n');
}

module.exports = { ensureInstalled, ensureBuilt, root };
