/**
 * What the simulation knows the volume may hold. Each block keeps the writes
 * issued to it in issue order (gid), with their outcome. A block may hold the
 * value of the newest acknowledged write, or of any write issued after it that
 * was not acknowledged (pending or failed: a failed write may or may not have
 * landed). Tag 0 is zeros: never written, or unmapped.
 */
interface Entry {
  readonly gid: number;
  readonly tag: number;
  state: 'pending' | 'acked' | 'failed';
}

export class Oracle {
  private readonly blocks: Entry[][];
  private readonly byGid = new Map<number, Entry[]>();

  constructor(blockCount: number) {
    this.blocks = Array.from({ length: blockCount }, () => [{ gid: 0, tag: 0, state: 'acked' as const }]);
  }

  issue(gid: number, first: number, count: number, tag: number): void {
    const entries: Entry[] = [];
    for (let b = first; b < first + count; b++) {
      const entry: Entry = { gid, tag, state: 'pending' };
      this.blocks[b].push(entry);
      entries.push(entry);
    }
    this.byGid.set(gid, entries);
  }

  settle(gid: number, ok: boolean): void {
    for (const entry of this.byGid.get(gid) ?? []) entry.state = ok ? 'acked' : 'failed';
  }

  /** gid of the newest acknowledged write to the block. */
  latestAcked(block: number): number {
    let gid = 0;
    for (const e of this.blocks[block]) if (e.state === 'acked' && e.gid > gid) gid = e.gid;
    return gid;
  }

  /** Tags the block may show, given the newest write acknowledged as of some moment (`since`). */
  allowed(block: number, since = this.latestAcked(block)): Set<number> {
    const tags = new Set<number>();
    for (const e of this.blocks[block]) {
      if (e.gid >= since) tags.add(e.tag);
    }
    return tags;
  }
}
