import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import { BLOCK_SIZE } from '../../../src/replica/store-types';
import { MiB, open, pattern, tempDir } from './helpers';

let mountPoint: string | null = null;
after(() => {
  if (mountPoint) {
    spawnSync('umount', [mountPoint]);
    fs.rmSync(mountPoint, { recursive: true, force: true });
  }
});

/** A 12 MiB tmpfs: a real filesystem that really runs out of space (needs root, as in CI). */
function mountTiny(): string | null {
  const dir = tempDir('trireme-enospc-');
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=12m', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(dir, { recursive: true, force: true });
    return null;
  }
  mountPoint = dir;
  return dir;
}

test('disk full fails writes with ERR_NO_SPACE, loses nothing acknowledged, and recovers when space returns', async (t) => {
  const mnt = mountTiny();
  if (!mnt) {
    if (process.env.CI === 'true') assert.fail('mounting a tmpfs failed (the test needs root)');
    t.skip('mounting a tmpfs needs root');
    return;
  }
  // Space we give back later, as an operator deleting something would.
  fs.writeFileSync(path.join(mnt, 'ballast'), Buffer.alloc(3 * MiB, 1));
  const dir = path.join(mnt, 'replica');
  let s = await open(dir, { size: 64 * MiB, segmentSize: 2 * MiB });
  await s.setEpoch(1);
  const model = new Map<number, number>();
  const extent = 16; // blocks per write
  let seq = 0;
  let failures = 0;
  for (let i = 0; i < 1000 && failures < 5; i++) {
    seq++;
    const lba = ((i * 37) % (16384 / extent)) * extent;
    try {
      await s.write(1, seq, lba * BLOCK_SIZE, pattern(seq, lba, extent));
      for (let k = 0; k < extent; k++) model.set(lba + k, seq);
    } catch (err) {
      assert.equal((err as { code?: string }).code, 'ERR_NO_SPACE', String(err));
      failures++;
    }
  }
  assert.equal(failures, 5, 'the filesystem filled up');
  assert.equal(s.info().state, 'ok');
  await assert.rejects(s.flush(1).then(() => s.write(1, ++seq, 0, pattern(seq, 0, extent))), { code: 'ERR_NO_SPACE' });

  const verify = async (): Promise<void> => {
    for (const [lba, w] of model) {
      const got = await s.read(lba * BLOCK_SIZE, BLOCK_SIZE);
      assert.ok(got.equals(pattern(w, lba)), `lba ${lba} should hold write ${w}`);
    }
  };
  await verify();

  fs.rmSync(path.join(mnt, 'ballast'));
  for (let i = 0; i < 20; i++) {
    seq++;
    const lba = 16000 + i * 8;
    await s.write(1, seq, lba * BLOCK_SIZE, pattern(seq, lba, 8));
    for (let k = 0; k < 8; k++) model.set(lba + k, seq);
  }
  await s.flush(1);
  await verify();
  await s.close();
  s = await open(dir);
  assert.equal(s.info().state, 'ok', s.info().error);
  await verify();
  await s.close();
});
