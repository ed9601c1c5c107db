import type { V1Deployment } from '@kubernetes/client-node';
import { createIfAbsent, isNotFound, retryOnConflict, type KubeClient } from './kube-client';
import { controllerDeployment, controllerService, replicaDeployment, replicaService, type WorkloadSettings } from './manifests';
import { FINALIZER, chapSecretName, controllerName, replicaName } from './names';
import { isPopulating, type TriremeVolume } from './types';

/**
 * Makes the cluster hold what a TriremeVolume's spec asks for: the controller
 * Service and Deployment and one Service and Deployment per replica. Missing
 * objects are created; the controller Deployment is replaced when its
 * replica count or arguments drift from the spec (a replica swapped, the size grown), so a
 * restarted controller opens the current replica set. Replica Deployments are
 * never rewritten: their pod template pins them to their node and data.
 * A clone still being filled gets no controller Deployment: a controller
 * would raise the replicas' epoch and serve whatever part of the copy is there.
 */
export async function ensureWorkloads(kube: KubeClient, volume: TriremeVolume, settings: WorkloadSettings): Promise<void> {
  await createIfAbsent(() => kube.createService(controllerService(volume, settings)));
  for (const r of volume.spec.replicas) {
    await createIfAbsent(() => kube.createService(replicaService(volume, r.index, settings)));
    await createIfAbsent(() => kube.createDeployment(replicaDeployment(volume, r.index, r.node, settings)));
  }
  if (isPopulating(volume)) return;
  const desired = controllerDeployment(volume, settings);
  if (await createIfAbsent(() => kube.createDeployment(desired))) return;
  await retryOnConflict(
    () => kube.readDeployment(controllerName(volume.metadata.name)),
    async (current: V1Deployment) => {
      // Arguments (replica set, size) and the replica count (someone scaled it to 0): the controller must run.
      const have = JSON.stringify([current.spec?.replicas, current.spec?.template?.spec?.containers?.[0]?.args ?? []]);
      const want = JSON.stringify([desired.spec?.replicas, desired.spec?.template?.spec?.containers?.[0]?.args ?? []]);
      if (have === want) return current;
      // Keep the server's metadata (resourceVersion makes this a guarded write) and take our spec.
      return kube.replaceDeployment({ ...desired, metadata: { ...current.metadata, labels: desired.metadata?.labels } });
    },
  );
}

/** Removes one replica's Deployment and Service (its hostPath data stays: Retain, see deploy/README.md). */
export async function removeReplicaWorkload(kube: KubeClient, volumeId: string, index: number): Promise<void> {
  await kube.deleteDeployment(replicaName(volumeId, index));
  await kube.deleteService(replicaName(volumeId, index));
}

/**
 * Deletion with a finalizer: everything the volume owns goes first, then the
 * finalizer, so the resource disappears only once nothing of it runs.
 */
export async function finalizeVolume(kube: KubeClient, volume: TriremeVolume): Promise<void> {
  const id = volume.metadata.name;
  await kube.deleteDeployment(controllerName(id));
  await kube.deleteService(controllerName(id));
  for (const r of volume.spec.replicas) await removeReplicaWorkload(kube, id, r.index);
  await kube.deleteSecret(chapSecretName(id));
  await retryOnConflict(
    () => kube.getVolume(id),
    async (current) => {
      if (!current.metadata.finalizers?.includes(FINALIZER)) return current;
      return kube.replaceVolume({ ...current, metadata: { ...current.metadata, finalizers: current.metadata.finalizers.filter((f) => f !== FINALIZER) } });
    },
  );
}

export async function exists(read: () => Promise<unknown>): Promise<boolean> {
  try {
    await read();
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw err;
  }
}
