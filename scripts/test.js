'use strict';
// The test command: installs (or, without root, checks) the host tools the tests
// drive, builds, lints, then runs node's test runner over dist/test.
// Under CI=true a tool that is still missing is a failure, never a skip.
const { execFileSync, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { ensureBuilt, root } = require('./bootstrap.js');

// Debian package that provides each tool the tests run.
const TOOLS = {
  'iscsi-test-cu': 'libiscsi-bin',
  'iscsi-inq': 'libiscsi-bin',
  'iscsi-ls': 'libiscsi-bin',
  'qemu-io': 'qemu-utils',
  'qemu-img': 'qemu-utils',
  tgtd: 'tgt',
  tgtadm: 'tgt',
  iscsiadm: 'open-iscsi',
  'iscsi-readcapacity16': 'libiscsi-bin',
  ip: 'iproute2',
  losetup: 'mount',
  blkid: 'util-linux',
  blockdev: 'util-linux',
  mkswap: 'util-linux',
  'mkfs.ext4': 'e2fsprogs',
  resize2fs: 'e2fsprogs',
  'mkfs.xfs': 'xfsprogs',
  xfs_growfs: 'xfsprogs',
  xfs_io: 'xfsprogs',
  'qemu-system-x86_64': 'qemu-system-x86',
};
const EXTRA_PACKAGES = ['qemu-block-extra'];
// fio comes from scripts/install-fio.sh (Debian's source rebuilt with the
// libiscsi engine), not from a package: Debian's binary lacks that engine.
const FIO_HINT = 'fio with libiscsi (run scripts/install-fio.sh as root)';

function hasTool(name) {
  return spawnSync('sh', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;
}

function hasLibiscsiFio() {
  const r = spawnSync('fio', ['--enghelp'], { encoding: 'utf8' });
  return r.status === 0 && /^\s*libiscsi\s*$/m.test(r.stdout);
}

function missingTools() {
  const missing = Object.keys(TOOLS).filter((t) => !hasTool(t));
  if (!hasLibiscsiFio()) missing.push('fio');
  return missing;
}

function describe(tool) {
  return tool === 'fio' ? FIO_HINT : `apt-get install ${TOOLS[tool]}`;
}

function installTools() {
  let missing = missingTools();
  const qemuIscsi = fs.existsSync('/usr/lib/x86_64-linux-gnu/qemu/block-iscsi.so') || fs.existsSync('/usr/lib/aarch64-linux-gnu/qemu/block-iscsi.so');
  if (missing.length === 0 && qemuIscsi) return [];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (isRoot && hasTool('apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const pkgs = [...new Set([...missing.filter((t) => t !== 'fio').map((t) => TOOLS[t]), ...EXTRA_PACKAGES])];
    if (missing.some((t) => t !== 'fio') || !qemuIscsi) {
      process.stderr.write(`test: installing ${pkgs.join(' ')}\n`);
      execFileSync('apt-get', ['update', '-q'], { stdio: 'inherit', env });
      execFileSync('apt-get', ['install', '-y', '-q', '--no-install-recommends', ...pkgs], { stdio: 'inherit', env });
    }
    if (missing.includes('fio')) {
      process.stderr.write('test: building fio with libiscsi (scripts/install-fio.sh)\n');
      execFileSync('bash', [path.join(root, 'scripts', 'install-fio.sh')], { stdio: 'inherit', env });
    }
    missing = missingTools();
  }
  return missing;
}

function main() {
  const missing = installTools();
  if (missing.length > 0) {
    const msg = `missing tools: ${missing.join(', ')} (${[...new Set(missing.map(describe))].join('; ')})`;
    if (process.env.CI === 'true') {
      process.stderr.write(`test: ${msg}\n`);
      process.exit(1);
    }
    process.stderr.write(`test: warning: ${msg}; tests that need them will be skipped\n`);
  }
  ensureBuilt();
  execFileSync(process.execPath, [path.join(root, 'node_modules', 'eslint', 'bin', 'eslint.js'), '.'], { cwd: root, stdio: 'inherit' });
  const args = ['--test', '--test-concurrency=2', ...process.argv.slice(2)];
  if (process.argv.length <= 2) args.push(path.join('dist', 'test'));
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  process.exit(result.status === null ? 1 : result.status);
}

main();
