import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, describe, test, type TestContext } from 'node:test';
import { parse } from 'yaml';
import { main, markdownTable, parseFioOutput, svgChart } from '../../../bench/k8s/collect';
import { DEFAULT_CLASSES, generate } from '../../../bench/k8s/generate';
import { requireTools } from '../../support/host-tools';

const run = promisify(execFile);
const REPO = join(__dirname, '..', '..', '..', '..');

/**
 * bench/k8s/matrix.fio made short for a test: the same six jobs, 1 s each on a
 * 32 MiB file, with the engine given (the in-cluster run uses libaio and
 * direct I/O; buffered psync is the second run to compare against).
 */
async function shortMatrix(dir: string, engine: string): Promise<string> {
  const matrix = await readFile(join(REPO, 'bench/k8s/matrix.fio'), 'utf8');
  const file = join(dir, `matrix-${engine}.fio`);
  const direct = engine === 'libaio' ? 1 : 0;
  await writeFile(
    file,
    matrix
      .replace(/^filename=.*$/m, `filename=${join(dir, 'fio.dat')}`)
      .replace(/^size=.*$/m, 'size=32m')
      .replace(/^runtime=.*$/m, 'runtime=1')
      .replace(/^ramp_time=.*$/m, 'ramp_time=0')
      .replace(/^ioengine=.*$/m, `ioengine=${engine}`)
      .replace(/^direct=.*$/m, `direct=${direct}`),
  );
  return file;
}

describe('bench/k8s collector over real fio output', () => {
  let dir = '';
  const outputs: Record<string, string> = {};
  let ran: Promise<void> | undefined;

  /** Runs the short matrix once with each engine (about 12 s), for whichever test needs it first. */
  async function fioRuns(t: TestContext): Promise<boolean> {
    if (!requireTools(t, { fio: 'fio' })) return false;
    ran ??= (async () => {
      dir = await mkdtemp(join(tmpdir(), 'trireme-fio-'));
      for (const engine of ['libaio', 'psync']) {
        const { stdout } = await run('fio', ['--output-format=json', await shortMatrix(dir, engine)], { timeout: 60_000, maxBuffer: 16 << 20 });
        outputs[engine] = stdout;
        await writeFile(join(dir, `${engine}.json`), stdout);
      }
    })();
    await ran;
    return true;
  }

  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('parses every job of the matrix with its direction, IOPS, bandwidth and p99', async (t) => {
    if (!(await fioRuns(t))) return;
    const r = parseFioOutput('libaio', outputs.libaio);
    assert.deepEqual(r.jobs.map((j) => j.job), ['randread-4k-qd32', 'randwrite-4k-qd32', 'randread-4k-qd1', 'randwrite-4k-qd1', 'read-1m-qd8', 'write-1m-qd8']);
    assert.deepEqual(r.jobs.map((j) => j.direction), ['read', 'write', 'read', 'write', 'read', 'write']);
    for (const j of r.jobs) {
      assert.ok(j.iops > 0 && j.bytesPerSecond > 0, j.job);
      assert.ok(j.p99us >= j.p50us && j.p50us > 0, j.job);
      const bs = j.job.includes('1m') ? 1 << 20 : 4096;
      // bandwidth / IOPS is the block size (fio rounds both).
      assert.ok(Math.abs(j.bytesPerSecond / j.iops - bs) / bs < 0.05, `${j.job}: ${j.bytesPerSecond / j.iops}`);
    }
  });

  test('writes the comparison table and the chart from files', async (t) => {
    if (!(await fioRuns(t))) return;
    const md = join(dir, 'out.md');
    const svg = join(dir, 'out.svg');
    main([`aio=${join(dir, 'libaio.json')}`, join(dir, 'psync.json'), '--markdown', md, '--svg', svg]);
    const table = await readFile(md, 'utf8');
    const lines = table.trim().split('\n');
    assert.equal(lines[0], '| job | metric | aio | psync |');
    assert.equal(lines.length, 2 + 6 * 3);
    const runs = [parseFioOutput('aio', outputs.libaio), parseFioOutput('psync', outputs.psync)];
    const iops = Math.round(runs[0].jobs[0].iops).toLocaleString('en-US');
    assert.ok(lines[2].startsWith(`| randread-4k-qd32 | IOPS | ${iops} |`), lines[2]);
    assert.equal(table, markdownTable(runs));
    const chart = await readFile(svg, 'utf8');
    assert.match(chart, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
    assert.equal((chart.match(/<rect [^>]*><title>/g) ?? []).length, 12, 'one bar per job and run');
    assert.match(chart, /read-1m-qd8 \(MiB\/s\)/);
    assert.match(chart, /randwrite-4k-qd1 \(IOPS\)/);
    assert.equal(chart, svgChart(runs));
  });

  test('bad input is a clear error', async (t) => {
    if (!(await fioRuns(t))) return;
    assert.throws(() => parseFioOutput('x', 'no json here'), { code: 'ERR_FIO_JSON', message: /no JSON object/ });
    assert.throws(() => parseFioOutput('x', '{"jobs": [}'), { code: 'ERR_FIO_JSON', message: /not JSON/ });
    assert.throws(() => parseFioOutput('x', '{"jobs": []}'), { code: 'ERR_FIO_JSON', message: /no jobs/ });
    assert.throws(() => parseFioOutput('x', '{"jobs": [{"jobname": "a", "error": 5}]}'), { code: 'ERR_FIO_JSON', message: /failed with error 5/ });
    assert.throws(() => main([]), { code: 'ERR_FIO_JSON', message: /usage/ });
    // A notice before the JSON (kubectl logs, fio warnings) is skipped.
    assert.equal(parseFioOutput('x', `fio: note\n${outputs.psync}`).jobs.length, 6);
  });

  test('the committed fio-jobs.yaml is what the generator writes for the default classes', async () => {
    const committed = await readFile(join(REPO, 'bench/k8s/fio-jobs.yaml'), 'utf8');
    assert.equal(committed, generate({ classes: DEFAULT_CLASSES }));
    const docs = committed.split(/^---$/m).map((d) => parse(d) as { kind: string; spec?: { storageClassName?: string } });
    assert.deepEqual(docs.filter((d) => d.kind === 'PersistentVolumeClaim').map((d) => d.spec?.storageClassName), DEFAULT_CLASSES);
    assert.equal(docs.filter((d) => d.kind === 'Job').length, 3);
  });
});
