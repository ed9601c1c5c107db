import { createHash } from 'node:crypto';

/** The TriremeVolume custom resource (deploy/kustomize/base/crd-triremevolume.yaml). */
export const CRD = { group: 'trireme.io', version: 'v1alpha1', plural: 'triremevolumes', kind: 'TriremeVolume' } as const;

/** Keeps a TriremeVolume until its workloads are gone (the reconciler removes it last). */
export const FINALIZER = 'trireme.io/cleanup';

export const PORTS = { portal: 3260, management: 9500, metrics: 9600, replica: 9700 } as const;

export const IQN_PREFIX = 'iqn.2026-11.io.trireme:';

export const LABELS = {
  partOf: 'app.kubernetes.io/part-of',
  component: 'app.kubernetes.io/component',
  volume: 'trireme.io/volume',
  replica: 'trireme.io/replica',
} as const;

/** RFC 1035 labels: Services need them, and they are valid for every other kind too. */
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** Leaves room for the `-r<index>` and `-ctl` suffixes within 63 characters. */
const MAX_VOLUME_ID = 52;

/**
 * Volume ids double as Kubernetes object names. CSI names from the external
 * provisioner (`pvc-<uuid>`) already fit and are kept, so `kubectl get
 * triremevolumes` shows the PV name; any other name is hashed into one.
 */
export function volumeIdFor(csiName: string): string {
  if (DNS_LABEL.test(csiName) && csiName.length <= MAX_VOLUME_ID) return csiName;
  return `tv-${createHash('sha256').update(csiName).digest('hex').slice(0, 32)}`;
}

export const isVolumeId = (id: string): boolean => DNS_LABEL.test(id) && id.length <= MAX_VOLUME_ID;

export const controllerName = (volumeId: string): string => `${volumeId}-ctl`;
export const replicaName = (volumeId: string, index: number): string => `${volumeId}-r${index}`;
export const chapSecretName = (volumeId: string): string => `${volumeId}-chap`;

/** Where the controller reaches a replica: its Service's cluster DNS name. */
export function replicaAddress(volumeId: string, index: number, namespace: string): string {
  return `${replicaName(volumeId, index)}.${namespace}.svc:${PORTS.replica}`;
}

export function managementAddress(volumeId: string, namespace: string): string {
  return `${controllerName(volumeId)}.${namespace}.svc:${PORTS.management}`;
}

export function volumeLabels(volumeId: string, component: 'controller' | 'replica'): Record<string, string> {
  return { [LABELS.partOf]: 'trireme', [LABELS.component]: component, [LABELS.volume]: volumeId };
}
