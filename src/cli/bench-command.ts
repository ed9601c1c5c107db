import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { InvalidArgumentError } from '../common/errors';

/** The benchmarks under bench/, each comparing Trireme with a reference in the same run. */
const SUITES: Record<string, { script: string; about: string }> = {
  target: { script: 'target-vs-tgtd.js', about: 'trireme target vs tgtd over one file, fio libiscsi matrix' },
  volume: { script: 'volume-vs-tgtd.js', about: '3-replica volume vs tgtd vs raw file I/O, idle RSS' },
  store: { script: 'replica-store.js', about: 'replica store vs raw file I/O, index memory, restart, compaction' },
  wire: { script: 'replica-wire.js', about: 'replica data path over TCP, memory and disk store' },
};

/** dist/src/cli -> dist/bench */
const BENCH_DIR = join(__dirname, '..', '..', 'bench');

/** `trireme bench SUITE [ARGS...]`: runs one benchmark of bench/ with its own flags. */
export function registerBenchCommand(program: Command): void {
  program
    .command('bench')
    .description(`run a benchmark against its reference: ${Object.keys(SUITES).join(', ')} (flags pass through)`)
    .argument('<suite>', Object.entries(SUITES).map(([name, s]) => `${name}: ${s.about}`).join('; '))
    .argument('[args...]', 'flags for the benchmark itself (after --)')
    .allowUnknownOption()
    .action(async (suite: string, args: string[]) => {
      const entry = SUITES[suite];
      if (!entry) throw new InvalidArgumentError(`unknown benchmark "${suite}": expected one of ${Object.keys(SUITES).join(', ')}`);
      const script = join(BENCH_DIR, entry.script);
      if (!existsSync(script)) throw new InvalidArgumentError(`${script} is missing: build the tree first (npm test or bin/trireme.js)`);
      const code = await new Promise<number>((resolve, reject) => {
        const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' });
        child.once('error', reject);
        child.once('exit', (status, signal) => resolve(status ?? (signal ? 1 : 0)));
      });
      process.exitCode = code;
    });
}
