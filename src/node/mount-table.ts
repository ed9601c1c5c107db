import type { HostExecutor } from './executor';

/** One line of /proc/self/mountinfo (proc(5)). */
export interface MountEntry {
  readonly mountId: number;
  readonly parentId: number;
  /** `major:minor` of the device behind the mount (st_dev). */
  readonly majorMinor: string;
  /** The path within the filesystem that forms the root of this mount. */
  readonly root: string;
  readonly mountPoint: string;
  readonly options: readonly string[];
  readonly fsType: string;
  readonly source: string;
  readonly superOptions: readonly string[];
}

/** mountinfo escapes space, tab, newline and backslash as \ooo octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountInfo(text: string): MountEntry[] {
  const entries: MountEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const fields = line.split(' ');
    const sep = fields.indexOf('-', 6);
    if (sep < 0 || fields.length < sep + 3) continue;
    entries.push({
      mountId: Number(fields[0]),
      parentId: Number(fields[1]),
      majorMinor: fields[2],
      root: unescape(fields[3]),
      mountPoint: unescape(fields[4]),
      options: fields[5].split(','),
      fsType: fields[sep + 1],
      source: unescape(fields[sep + 2]),
      superOptions: (fields[sep + 3] ?? '').split(','),
    });
  }
  return entries;
}

/**
 * The mount table as the host's tools see it. Read through the executor so that,
 * inside a container, it is the host's mount namespace that is inspected.
 */
export class MountTable {
  constructor(private readonly executor: HostExecutor) {}

  async read(): Promise<MountEntry[]> {
    const { stdout } = await this.executor.run('cat', ['/proc/self/mountinfo']);
    return parseMountInfo(stdout);
  }

  /** The topmost mount at this path, if any (the last one listed wins when mounts are stacked). */
  async at(path: string): Promise<MountEntry | undefined> {
    const target = normalise(path);
    const entries = (await this.read()).filter((e) => e.mountPoint === target);
    return entries[entries.length - 1];
  }

  /** Every mount of the device with this `major:minor` (staging mount, bind mounts, anything else). */
  async ofDevice(majorMinor: string): Promise<MountEntry[]> {
    return (await this.read()).filter((e) => e.majorMinor === majorMinor);
  }
}

function normalise(path: string): string {
  return path.length > 1 ? path.replace(/\/+$/, '') : path;
}
