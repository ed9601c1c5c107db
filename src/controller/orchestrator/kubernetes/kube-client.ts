import { AppsV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, Watch, type V1Deployment, type V1Node, type V1Secret, type V1Service } from '@kubernetes/client-node';
import { TriremeError } from '../../../common/errors';
import { CRD } from './names';
import type { TriremeVolume } from './types';

/** HTTP status of a failed API call, or undefined for transport errors. */
export function httpStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => httpStatus(err) === 404;
export const isConflict = (err: unknown): boolean => httpStatus(err) === 409;

/**
 * Read-modify-write with optimistic concurrency: a 409 (someone else wrote the
 * object since we read it, its resourceVersion moved) re-reads and tries again.
 * Returns undefined when the object is gone (404).
 */
export async function retryOnConflict<T>(read: () => Promise<T>, write: (current: T) => Promise<T | undefined>, attempts = 8): Promise<T | undefined> {
  for (let i = 0; i < attempts; i++) {
    let current: T;
    try {
      current = await read();
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
    try {
      return await write(current);
    } catch (err) {
      if (isNotFound(err)) return undefined;
      if (!isConflict(err)) throw err;
      await new Promise((r) => setTimeout(r, 10 * (i + 1)));
    }
  }
  throw new TriremeError('ERR_CONFLICT', `gave up after ${attempts} conflicting updates`);
}

/** Creates an object; one that already exists (409 AlreadyExists, e.g. a retried create) counts as created. */
export async function createIfAbsent(create: () => Promise<unknown>): Promise<boolean> {
  try {
    await create();
    return true;
  } catch (err) {
    if (isConflict(err)) return false;
    throw err;
  }
}

/**
 * The few Kubernetes API calls the orchestrator and reconciler make, in one
 * place: deploy/kustomize/base/rbac.yaml grants exactly these (test/deploy checks it).
 */
export class KubeClient {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  private readonly custom: CustomObjectsApi;
  readonly watcher: Watch;

  constructor(
    readonly config: KubeConfig,
    readonly namespace: string,
  ) {
    this.core = config.makeApiClient(CoreV1Api);
    this.apps = config.makeApiClient(AppsV1Api);
    this.custom = config.makeApiClient(CustomObjectsApi);
    this.watcher = new Watch(config);
  }

  private crd<T extends object>(extra: T): T & { group: string; version: string; namespace: string; plural: string } {
    return { group: CRD.group, version: CRD.version, namespace: this.namespace, plural: CRD.plural, ...extra };
  }

  getVolume(name: string): Promise<TriremeVolume> {
    return this.custom.getNamespacedCustomObject(this.crd({ name })) as Promise<TriremeVolume>;
  }

  async listVolumes(): Promise<{ items: TriremeVolume[]; resourceVersion: string }> {
    const list = (await this.custom.listNamespacedCustomObject(this.crd({}))) as { items: TriremeVolume[]; metadata?: { resourceVersion?: string } };
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  createVolume(body: TriremeVolume): Promise<TriremeVolume> {
    return this.custom.createNamespacedCustomObject(this.crd({ body })) as Promise<TriremeVolume>;
  }

  replaceVolume(body: TriremeVolume): Promise<TriremeVolume> {
    return this.custom.replaceNamespacedCustomObject(this.crd({ name: body.metadata.name, body })) as Promise<TriremeVolume>;
  }

  replaceVolumeStatus(body: TriremeVolume): Promise<TriremeVolume> {
    return this.custom.replaceNamespacedCustomObjectStatus(this.crd({ name: body.metadata.name, body })) as Promise<TriremeVolume>;
  }

  async deleteVolume(name: string): Promise<void> {
    await this.custom.deleteNamespacedCustomObject(this.crd({ name }));
  }

  readDeployment(name: string): Promise<V1Deployment> {
    return this.apps.readNamespacedDeployment({ name, namespace: this.namespace });
  }

  createDeployment(body: V1Deployment): Promise<V1Deployment> {
    return this.apps.createNamespacedDeployment({ namespace: this.namespace, body });
  }

  replaceDeployment(body: V1Deployment): Promise<V1Deployment> {
    return this.apps.replaceNamespacedDeployment({ name: body.metadata?.name ?? '', namespace: this.namespace, body });
  }

  /** Deletes; a missing object is already deleted. */
  async deleteDeployment(name: string): Promise<void> {
    await ignoreNotFound(() => this.apps.deleteNamespacedDeployment({ name, namespace: this.namespace, propagationPolicy: 'Foreground' }));
  }

  readService(name: string): Promise<V1Service> {
    return this.core.readNamespacedService({ name, namespace: this.namespace });
  }

  createService(body: V1Service): Promise<V1Service> {
    return this.core.createNamespacedService({ namespace: this.namespace, body });
  }

  async deleteService(name: string): Promise<void> {
    await ignoreNotFound(() => this.core.deleteNamespacedService({ name, namespace: this.namespace }));
  }

  readSecret(name: string): Promise<V1Secret> {
    return this.core.readNamespacedSecret({ name, namespace: this.namespace });
  }

  createSecret(body: V1Secret): Promise<V1Secret> {
    return this.core.createNamespacedSecret({ namespace: this.namespace, body });
  }

  async deleteSecret(name: string): Promise<void> {
    await ignoreNotFound(() => this.core.deleteNamespacedSecret({ name, namespace: this.namespace }));
  }

  async listNodes(): Promise<{ items: V1Node[]; resourceVersion: string }> {
    const list = await this.core.listNode();
    return { items: list.items, resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  volumesPath(): string {
    return `/apis/${CRD.group}/${CRD.version}/namespaces/${this.namespace}/${CRD.plural}`;
  }
}

async function ignoreNotFound(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
}
