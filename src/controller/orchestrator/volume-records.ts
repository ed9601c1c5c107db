import { Level } from 'level';
import { InvalidArgumentError, TriremeError } from '../../common/errors';

export interface ReplicaRecord {
  /** Stable per volume, never reused: names the data directory replica-<index>. */
  readonly index: number;
  readonly port: number;
}

/** What the manager keeps about one volume; everything else is derived or live. */
export interface VolumeRecord {
  readonly name: string;
  readonly sizeBytes: number;
  readonly iqn: string;
  readonly portalPort: number;
  readonly managementPort: number;
  readonly metricsPort: number;
  readonly replicas: readonly ReplicaRecord[];
  readonly nextReplicaIndex: number;
  readonly createdAt: string;
  /** One-way CHAP the target requires (CSI `chap: "true"`); the secret never goes on a command line. */
  readonly chap?: { readonly user: string; readonly secret: string };
  /**
   * Set while a clone's replicas are being filled, before its controller first
   * starts. A record still marked after a restart of the stack is a copy cut
   * short: the volume is removed, never served with part of its data.
   */
  readonly populating?: boolean;
  /**
   * The snapshot a volume clone cut on its source for the copy, kept while
   * populating: a copy cut short by a restart deletes it when the clone is removed.
   */
  readonly cloneSnapshot?: { readonly volume: string; readonly snapshot: string };
  /** For volumes made through CSI: the request name and the file system the node makes. */
  readonly csi?: {
    readonly name: string;
    readonly fsType: 'ext4' | 'xfs';
    /** What a clone was made from, so a repeated CreateVolume can be matched against it. */
    readonly source?: { readonly kind: 'snapshot'; readonly snapshotId: string } | { readonly kind: 'volume'; readonly volumeId: string };
  };
}

/** Volume names become IQN suffixes, directory names and Kubernetes-style ids. */
export const VOLUME_NAME = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;

export function validateVolumeName(name: unknown): string {
  if (typeof name !== 'string' || !VOLUME_NAME.test(name)) {
    throw new InvalidArgumentError(`invalid volume name "${String(name)}": 1-63 lowercase letters, digits, "-" or ".", starting and ending with a letter or digit`);
  }
  return name;
}

export class VolumeNotFoundError extends TriremeError {
  constructor(name: string) {
    super('ERR_VOLUME_NOT_FOUND', `volume "${name}" does not exist`);
  }
}

const PREFIX = 'volume/';
const SCHEMA_KEY = 'meta/schema';
const SCHEMA = 1;

/** Volume records in LevelDB: one JSON value per volume under `volume/<name>`. */
export class VolumeRecords {
  private constructor(private readonly db: Level<string, unknown>) {}

  static async open(path: string): Promise<VolumeRecords> {
    const db = new Level<string, unknown>(path, { valueEncoding: 'json' });
    try {
      await db.open();
    } catch (err) {
      // LevelDB holds a LOCK file: the usual cause is a second manager on the same data directory.
      const detail = (err as { cause?: Error }).cause?.message ?? (err as Error).message;
      throw new TriremeError('ERR_DATABASE', `cannot open the volume database at ${path} (is another \`trireme up\` using this data directory?): ${detail}`, { cause: err });
    }
    const schema = await db.get(SCHEMA_KEY);
    if (schema === undefined) await db.put(SCHEMA_KEY, SCHEMA);
    else if (schema !== SCHEMA) {
      await db.close();
      throw new TriremeError('ERR_DATABASE', `volume database at ${path} has schema ${String(schema)}, this version reads ${SCHEMA}`);
    }
    return new VolumeRecords(db);
  }

  async get(name: string): Promise<VolumeRecord | undefined> {
    return (await this.db.get(PREFIX + name)) as VolumeRecord | undefined;
  }

  async require(name: string): Promise<VolumeRecord> {
    const record = await this.get(name);
    if (!record) throw new VolumeNotFoundError(name);
    return record;
  }

  async list(): Promise<VolumeRecord[]> {
    const out: VolumeRecord[] = [];
    for await (const value of this.db.values({ gt: PREFIX, lt: `${PREFIX}\xff` })) out.push(value as VolumeRecord);
    return out;
  }

  async put(record: VolumeRecord): Promise<void> {
    await this.db.put(PREFIX + record.name, record);
  }

  async delete(name: string): Promise<void> {
    await this.db.del(PREFIX + name);
  }

  /** Small facts about the stack itself (e.g. whether the demo volume was made once). */
  async getMeta(key: string): Promise<unknown> {
    return this.db.get(`meta/${key}`);
  }

  async putMeta(key: string, value: unknown): Promise<void> {
    await this.db.put(`meta/${key}`, value);
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
