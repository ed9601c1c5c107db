import fs from 'node:fs';
import path from 'node:path';
import { MAX_SEGMENTS } from './block-index';
import { StoreError } from './errors';
import { closeFd, fsyncDir, pwritevFull } from './fs-io';
import { SEGMENT_HEADER_SIZE, decodeSegmentHeader, encodeSegmentHeader } from './record-codec';

/** One segment file and what the store knows about it. */
export interface Segment {
  readonly idx: number;
  /** Creation order across the life of the replica (indexes are reused, gens never). */
  readonly gen: number;
  readonly kind: number;
  fd: number;
  /** Bytes of valid content (header plus whole records). */
  size: number;
  /** Seq bounds of the records it holds (Infinity / -Infinity when none). */
  minSeq: number;
  maxSeq: number;
  /** Reads in flight; a retired segment is closed and removed when this reaches 0. */
  readers: number;
  retired: boolean;
  /** Left out of checkpoints: compaction copied it away and deletes it once that is durable. */
  hidden: boolean;
  sealed: boolean;
}

export interface SegmentMeta {
  idx: number;
  gen: number;
  kind: number;
  minSeq: number | null;
  maxSeq: number | null;
  size: number;
  sealed: boolean;
}

const fileName = (idx: number): string => `${String(idx).padStart(5, '0')}.seg`;

/** The segment files of one replica: creation, lookup by index, retirement. */
export class SegmentSet {
  readonly dir: string;
  private readonly segs: (Segment | undefined)[] = [];
  private nextGen = 1;

  constructor(root: string) {
    this.dir = path.join(root, 'segments');
    fs.mkdirSync(this.dir, { recursive: true });
  }

  get(idx: number): Segment | undefined {
    return this.segs[idx];
  }

  all(): Segment[] {
    return this.segs.filter((s): s is Segment => s !== undefined && !s.retired && !s.hidden).sort((a, b) => a.gen - b.gen);
  }

  pathOf(idx: number): string {
    return path.join(this.dir, fileName(idx));
  }

  /** Segment files on disk, by index (for recovery). */
  listFiles(): number[] {
    return fs
      .readdirSync(this.dir)
      .filter((f) => /^\d{5}\.seg$/.test(f))
      .map((f) => Number(f.slice(0, 5)));
  }

  /** Opens an existing segment file and checks its header. */
  openExisting(idx: number, meta?: SegmentMeta): Segment | string {
    const fd = fs.openSync(this.pathOf(idx), 'r+');
    const head = Buffer.alloc(SEGMENT_HEADER_SIZE);
    const n = fs.readSync(fd, head, 0, SEGMENT_HEADER_SIZE, 0);
    const h = decodeSegmentHeader(head.subarray(0, n));
    if (typeof h === 'string' || h.segIdx !== idx) {
      fs.closeSync(fd);
      return typeof h === 'string' ? h : 'segment index mismatch';
    }
    const seg: Segment = {
      idx,
      gen: h.gen,
      kind: h.kind,
      fd,
      size: meta?.size ?? fs.fstatSync(fd).size,
      minSeq: meta?.minSeq ?? Infinity,
      maxSeq: meta?.maxSeq ?? -Infinity,
      readers: 0,
      retired: false,
      hidden: false,
      sealed: meta?.sealed ?? false,
    };
    this.segs[idx] = seg;
    this.nextGen = Math.max(this.nextGen, h.gen + 1);
    return seg;
  }

  /** Creates a segment with the lowest free index; its header is written (not yet synced). */
  async create(kind: number): Promise<Segment> {
    let idx = 1;
    while (idx <= MAX_SEGMENTS && (this.segs[idx] || fs.existsSync(this.pathOf(idx)))) idx++;
    if (idx > MAX_SEGMENTS) throw new StoreError('ERR_NO_SPACE', `more than ${MAX_SEGMENTS} segments`);
    const file = this.pathOf(idx);
    const fd = fs.openSync(file, 'wx+');
    const gen = this.nextGen++;
    try {
      await pwritevFull(fd, [encodeSegmentHeader({ segIdx: idx, gen, kind })], 0);
      await fsyncDir(this.dir);
    } catch (err) {
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
      throw err;
    }
    const seg: Segment = { idx, gen, kind, fd, size: SEGMENT_HEADER_SIZE, minSeq: Infinity, maxSeq: -Infinity, readers: 0, retired: false, hidden: false, sealed: false };
    this.segs[idx] = seg;
    return seg;
  }

  noteSeq(seg: Segment, seq: number): void {
    if (seq < seg.minSeq) seg.minSeq = seq;
    if (seq > seg.maxSeq) seg.maxSeq = seq;
  }

  /** Takes a segment out of service; the file goes once no read holds it. */
  retire(seg: Segment): void {
    seg.retired = true;
    if (seg.readers === 0) this.remove(seg);
  }

  release(seg: Segment): void {
    seg.readers--;
    if (seg.retired && seg.readers === 0) this.remove(seg);
  }

  /** Removes a segment file that was never referenced (an orphan or a failed compaction). */
  discard(idx: number): void {
    const seg = this.segs[idx];
    if (seg) {
      fs.closeSync(seg.fd);
      this.segs[idx] = undefined;
    }
    fs.rmSync(this.pathOf(idx), { force: true });
  }

  private remove(seg: Segment): void {
    if (this.segs[seg.idx] !== seg) return;
    this.segs[seg.idx] = undefined;
    fs.closeSync(seg.fd);
    fs.rmSync(this.pathOf(seg.idx), { force: true });
  }

  meta(seg: Segment): SegmentMeta {
    return {
      idx: seg.idx,
      gen: seg.gen,
      kind: seg.kind,
      minSeq: Number.isFinite(seg.minSeq) ? seg.minSeq : null,
      maxSeq: Number.isFinite(seg.maxSeq) ? seg.maxSeq : null,
      size: seg.size,
      sealed: seg.sealed,
    };
  }

  async closeAll(): Promise<void> {
    for (const seg of this.segs) if (seg) await closeFd(seg.fd);
    this.segs.length = 0;
  }
}
