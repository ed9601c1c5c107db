import fs from 'node:fs';

/**
 * Positional file I/O as promises over the callback API (lighter per call than
 * fs/promises FileHandle on the 4k path).
 */
export function pread(fd: number, buf: Buffer, position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.read(fd, buf, 0, buf.length, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/** Reads exactly buf.length bytes unless the file ends first; returns the count read. */
export async function preadFull(fd: number, buf: Buffer, position: number): Promise<number> {
  let done = 0;
  while (done < buf.length) {
    const n = await pread(fd, done === 0 ? buf : buf.subarray(done), position + done);
    if (n === 0) break;
    done += n;
  }
  return done;
}

export function pwritev(fd: number, bufs: Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) => {
    fs.writev(fd, bufs, position, (err, n) => (err ? reject(err) : resolve(n)));
  });
}

/**
 * Batches up to this size are written synchronously: a page-cache write of a
 * few KiB costs microseconds, less than the thread-pool round trip (a queue
 * hand-off, a wake-up of the loop and context switches on a busy host) that
 * every 4 KiB replicated write used to wait for. Larger batches still go
 * through the pool, so the loop never stalls on a long copy. Only the page
 * cache is involved either way: durability comes from fdatasync (flush/FUA).
 */
const SYNC_WRITE_MAX = 128 * 1024;

/** Writes all of `bufs` at `position`, continuing after short writes. */
export async function pwritevFull(fd: number, bufs: Buffer[], position: number): Promise<void> {
  let total = 0;
  for (const b of bufs) total += b.length;
  // A synchronous failure rejects this promise like an asynchronous one.
  let done = total <= SYNC_WRITE_MAX ? fs.writevSync(fd, bufs, position) : await pwritev(fd, bufs, position);
  while (done < total) {
    const rest: Buffer[] = [];
    let skip = done;
    for (const b of bufs) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      rest.push(skip > 0 ? b.subarray(skip) : b);
      skip = 0;
    }
    done += await pwritev(fd, rest, position + done);
  }
}

export function fdatasync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export function ftruncate(fd: number, len: number): Promise<void> {
  return new Promise((resolve, reject) => fs.ftruncate(fd, len, (err) => (err ? reject(err) : resolve())));
}

export function closeFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.close(fd, (err) => (err ? reject(err) : resolve())));
}

/** fsync of a directory so a created or removed file name is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fd = fs.openSync(dir, 'r');
  try {
    await new Promise<void>((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
  } finally {
    fs.closeSync(fd);
  }
}
