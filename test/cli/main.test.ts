import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { test } from 'node:test';
import { promisify } from 'node:util';
import { buildProgram, servesReplica } from '../../src/cli/main';

const argv = (...args: string[]): string[] => ['node', 'trireme', ...args];

test('servesReplica tells a replica server run from operator sub-commands and help', () => {
  const cases: Array<[string[], boolean]> = [
    [argv('replica', '--dir', '/d', '--listen', ':9700'), true],
    [argv('replica', '--memory', '--size', '1G'), true],
    [argv('replica', 'serve', '--dir', '/d'), true],
    [argv('replica', '--dir', '/d', 'serve'), true],
    [argv('--log-level', 'warn', 'replica', '--dir=/d'), true],
    [argv('replica', '--dir', 'ls'), true],
    [argv('replica', 'ls', 'vol'), false],
    [argv('replica', 'add', 'vol', '--json'), false],
    [argv('replica', 'rm', 'vol', '1'), false],
    [argv('replica', '--dir', '/d', '--help'), false],
    [argv('replica'), false],
    [argv('--help'), false],
  ];
  for (const [args, expected] of cases) assert.equal(servesReplica(args), expected, args.join(' '));
});

test('the replica command registers its operator sub-commands except when it serves', async () => {
  const names = async (args: string[]): Promise<string[]> => {
    const program = await buildProgram(args);
    const replica = program.commands.find((c) => c.name() === 'replica');
    assert.ok(replica);
    return replica.commands.map((c) => c.name()).sort();
  };
  assert.deepEqual(await names(argv('replica', 'ls', 'vol')), ['add', 'ls', 'rm', 'serve']);
  assert.deepEqual(await names(argv('replica', '--help')), ['add', 'ls', 'rm', 'serve']);
  assert.deepEqual(await names(argv('replica', '--dir', '/d')), ['serve']);
});

test('a replica server loads no controller, iSCSI, node or table-rendering module', async () => {
  // A fresh process: this test runner has loaded other areas itself.
  const main = resolve(__dirname, '..', '..', 'src', 'cli', 'main.js');
  const script = `require(${JSON.stringify(main)}).buildProgram(['node', 'trireme', 'replica', '--dir', '/d']).then(() => process.stdout.write(JSON.stringify(Object.keys(require.cache))))`;
  const { stdout } = await promisify(execFile)(process.execPath, ['-e', script], { timeout: 30_000 });
  const loaded = JSON.parse(stdout) as string[];
  assert.ok(loaded.some((f) => f.endsWith('replica-command.js')), 'the replica command itself is loaded');
  const foreign = loaded.filter((f) => /[\\/]dist[\\/]src[\\/](controller|iscsi|node)[\\/]|[\\/]cli-table3[\\/]|[\\/]@kubernetes[\\/]|replica-admin-command/.test(f));
  assert.deepEqual(foreign, []);
});
