import { randomUUID } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { VolumeTarget } from './device-acquirer';

/** What NodeStageVolume recorded about a volume, so NodeUnstageVolume (which gets only the id) can undo it. */
export interface StagedVolume {
  readonly volumeId: string;
  readonly target: VolumeTarget;
  readonly stagingPath: string;
  readonly block: boolean;
}

/**
 * One small JSON file per staged volume. It is written (and fsynced) before the
 * login, so a plugin killed half-way through staging still knows which session
 * to close when the CO calls NodeUnstageVolume after it restarts.
 */
export class StageStateStore {
  constructor(private readonly dir: string) {}

  private file(volumeId: string): string {
    return join(this.dir, `${encodeURIComponent(volumeId)}.json`);
  }

  async save(state: StagedVolume): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const tmp = join(this.dir, `.${randomUUID()}.tmp`);
    const handle = await open(tmp, 'w');
    try {
      await handle.writeFile(JSON.stringify(state));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file(state.volumeId));
  }

  async load(volumeId: string): Promise<StagedVolume | undefined> {
    try {
      return JSON.parse(await readFile(this.file(volumeId), 'utf8')) as StagedVolume;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  async remove(volumeId: string): Promise<void> {
    await rm(this.file(volumeId), { force: true });
  }

  async all(): Promise<StagedVolume[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const states = await Promise.all(names.filter((n) => n.endsWith('.json')).map((n) => this.load(decodeURIComponent(n.slice(0, -5)))));
    return states.filter((s): s is StagedVolume => s !== undefined);
  }
}
