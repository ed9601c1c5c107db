import type { V1Deployment, V1EnvVar, V1Secret, V1Service } from '@kubernetes/client-node';
import { CRD, LABELS, PORTS, chapSecretName, controllerName, replicaAddress, replicaName, volumeLabels } from './names';
import { CONTROLLER_GLIBC_TUNABLES, CONTROLLER_NODE_FLAGS, REPLICA_GLIBC_TUNABLES, REPLICA_NODE_FLAGS } from '../volume-processes';
import type { TriremeVolume } from './types';

/** What every per-volume workload is built from; comes from the CSI controller's flags and environment. */
export interface WorkloadSettings {
  readonly namespace: string;
  readonly image: string;
  readonly imagePullPolicy?: string;
  /** Directory on every storage node under which replicas keep their data (a hostPath). */
  readonly dataRoot: string;
  /** Service account of the per-volume pods: they call no Kubernetes API. */
  readonly serviceAccount: string;
}

/** The non-root user of deploy/Dockerfile. */
const TRIREME_UID = 10001;

function ownerRef(volume: TriremeVolume): Array<Record<string, unknown>> {
  // Garbage collection backs up the finalizer: if the resource is ever force-deleted, its workloads still go.
  // No blockOwnerDeletion: it would need update on triremevolumes/finalizers where that admission plugin runs.
  if (!volume.metadata.uid) return [];
  return [{ apiVersion: `${CRD.group}/${CRD.version}`, kind: CRD.kind, name: volume.metadata.name, uid: volume.metadata.uid, controller: true }];
}

const restricted = {
  runAsNonRoot: true,
  runAsUser: TRIREME_UID,
  runAsGroup: TRIREME_UID,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

export function controllerService(volume: TriremeVolume, s: WorkloadSettings): V1Service {
  const id = volume.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: controllerName(id), namespace: s.namespace, labels: volumeLabels(id, 'controller'), ownerReferences: ownerRef(volume) as never },
    spec: {
      // The management API must stay reachable while the volume is offline (its readiness fails then): that is when
      // the reconciler most needs to hand the controller new replicas. There is only ever one controller pod.
      publishNotReadyAddresses: true,
      selector: volumeLabels(id, 'controller'),
      ports: [
        { name: 'iscsi', port: PORTS.portal, targetPort: PORTS.portal as never, protocol: 'TCP' },
        { name: 'management', port: PORTS.management, targetPort: PORTS.management as never, protocol: 'TCP' },
        { name: 'metrics', port: PORTS.metrics, targetPort: PORTS.metrics as never, protocol: 'TCP' },
      ],
    },
  };
}

export function replicaService(volume: TriremeVolume, index: number, s: WorkloadSettings): V1Service {
  const id = volume.metadata.name;
  const labels = { ...volumeLabels(id, 'replica'), [LABELS.replica]: String(index) };
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name: replicaName(id, index), namespace: s.namespace, labels, ownerReferences: ownerRef(volume) as never },
    // The controller holds each replica's address for the volume's life: a stable DNS name, whichever pod serves it.
    spec: { selector: labels, ports: [{ name: 'data', port: PORTS.replica, targetPort: PORTS.replica as never, protocol: 'TCP' }] },
  };
}

export function controllerDeployment(volume: TriremeVolume, s: WorkloadSettings): V1Deployment {
  const id = volume.metadata.name;
  const labels = volumeLabels(id, 'controller');
  const args = ['controller', '--volume', id, '--size', String(volume.spec.sizeBytes), '--iqn', volume.spec.iqn];
  for (const r of volume.spec.replicas) args.push('--replica', replicaAddress(id, r.index, s.namespace));
  args.push('--portal', `0.0.0.0:${PORTS.portal}`, '--management', `0.0.0.0:${PORTS.management}`, '--metrics', `0.0.0.0:${PORTS.metrics}`);
  // The controller's malloc settings, as the local orchestrator gives its children (volume-processes.ts).
  const env: V1EnvVar[] = [{ name: 'GLIBC_TUNABLES', value: CONTROLLER_GLIBC_TUNABLES }];
  if (volume.spec.chap) {
    args.push('--chap-user', `trireme-${id.slice(-12)}`);
    env.push({ name: 'TRIREME_CHAP_SECRET', valueFrom: { secretKeyRef: { name: chapSecretName(id), key: 'secret' } } });
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: controllerName(id), namespace: s.namespace, labels, ownerReferences: ownerRef(volume) as never },
    spec: {
      replicas: 1,
      // Two controllers of one volume must never serve at once; replica epochs fence them anyway, Recreate avoids the fight.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels, annotations: { 'prometheus.io/scrape': 'true', 'prometheus.io/port': String(PORTS.metrics) } },
        spec: {
          serviceAccountName: s.serviceAccount,
          automountServiceAccountToken: false,
          securityContext: { runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } },
          containers: [
            {
              name: 'controller',
              image: s.image,
              ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
              // The image's entrypoint with the controller's node flags in front (volume-processes.ts).
              command: ['node', ...CONTROLLER_NODE_FLAGS, '/app/deploy/entrypoint.js'],
              args,
              env,
              ports: [
                { name: 'iscsi', containerPort: PORTS.portal },
                { name: 'management', containerPort: PORTS.management },
                { name: 'metrics', containerPort: PORTS.metrics },
              ],
              readinessProbe: { httpGet: { path: '/healthz', port: PORTS.metrics as never }, periodSeconds: 5 },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: restricted,
            },
          ],
        },
      },
    },
  };
}

/**
 * `trireme replica serve` gets --size only on an empty data directory: the
 * store checks --size against the size it holds, which grows with every
 * expansion, so a replica restarted after one would otherwise refuse to open.
 * Which case applies is known only on the node, hence the shell test.
 */
export function replicaCommand(volumeId: string, index: number, sizeBytes: number): string[] {
  const serve = ['node', ...REPLICA_NODE_FLAGS, '/app/deploy/entrypoint.js', 'replica', 'serve', '--dir', '/data', '--listen', `0.0.0.0:${PORTS.replica}`, '--volume-id', volumeId, '--replica-id', `r${index}`];
  return ['/bin/sh', '-c', `if [ -z "$(ls -A /data)" ]; then exec "$@" --size ${sizeBytes}; else exec "$@"; fi`, 'trireme-replica', ...serve];
}

export function replicaDeployment(volume: TriremeVolume, index: number, node: string, s: WorkloadSettings): V1Deployment {
  const id = volume.metadata.name;
  const labels = { ...volumeLabels(id, 'replica'), [LABELS.replica]: String(index) };
  const hostDir = `${s.dataRoot}/${id}/r${index}`;
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: replicaName(id, index), namespace: s.namespace, labels, annotations: { 'trireme.io/node': node }, ownerReferences: ownerRef(volume) as never },
    spec: {
      replicas: 1,
      // The data directory is single-writer: the old pod must be gone before the new one opens it.
      strategy: { type: 'Recreate' },
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: s.serviceAccount,
          automountServiceAccountToken: false,
          // Pinned: the data lives on this node's disk only. A replica whose node goes away is replaced, not moved.
          affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } },
          tolerations: [{ key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' }],
          securityContext: { seccompProfile: { type: 'RuntimeDefault' } },
          initContainers: [
            {
              // A hostPath made by the kubelet belongs to root; this hands it to the non-root replica and nothing more.
              name: 'chown-data',
              image: s.image,
              command: ['chown', `${TRIREME_UID}:${TRIREME_UID}`, '/data'],
              securityContext: { runAsUser: 0, runAsNonRoot: false, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'], add: ['CHOWN'] } },
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          containers: [
            {
              name: 'replica',
              image: s.image,
              ...(s.imagePullPolicy ? { imagePullPolicy: s.imagePullPolicy } : {}),
              command: replicaCommand(id, index, volume.spec.sizeBytes),
              // The replica's malloc settings, as the local orchestrator gives its children (volume-processes.ts).
              env: [{ name: 'GLIBC_TUNABLES', value: REPLICA_GLIBC_TUNABLES }],
              ports: [{ name: 'data', containerPort: PORTS.replica }],
              readinessProbe: { tcpSocket: { port: PORTS.replica as never }, periodSeconds: 5 },
              resources: { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '512Mi' } },
              securityContext: restricted,
              volumeMounts: [{ name: 'data', mountPath: '/data' }],
            },
          ],
          volumes: [{ name: 'data', hostPath: { path: hostDir, type: 'DirectoryOrCreate' } }],
        },
      },
    },
  };
}

export function chapSecret(volume: TriremeVolume, secret: string, s: WorkloadSettings): V1Secret {
  const id = volume.metadata.name;
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: { name: chapSecretName(id), namespace: s.namespace, labels: volumeLabels(id, 'controller'), ownerReferences: ownerRef(volume) as never },
    type: 'Opaque',
    stringData: { user: `trireme-${id.slice(-12)}`, secret },
  };
}
