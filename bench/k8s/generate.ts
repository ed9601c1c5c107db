import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';

/**
 * Writes the fio benchmark for each StorageClass given: one ConfigMap with
 * bench/k8s/matrix.fio, then per class a PVC and a Job that runs the matrix on
 * it and prints fio's JSON as its log. The same Job, byte for byte apart from
 * the class, runs on trireme, openebs-jiva and hostpath side by side.
 *
 *   node dist/bench/k8s/generate.js trireme openebs-jiva-csi-default microk8s-hostpath > fio-jobs.yaml
 */

export interface GenerateOptions {
  readonly classes: readonly string[];
  readonly namespace?: string;
  readonly image?: string;
  readonly size?: string;
}

export const DEFAULT_CLASSES = ['trireme', 'openebs-jiva-csi-default', 'microk8s-hostpath'];

/** DNS-1123 object name for a class: lower case, dots and other characters become dashes. */
export function jobName(storageClass: string): string {
  return `fio-${storageClass.toLowerCase().replace(/[^a-z0-9-]/g, '-')}`.slice(0, 63).replace(/-+$/, '');
}

export function generate(options: GenerateOptions): string {
  const namespace = options.namespace ?? 'trireme-bench';
  const matrix = readFileSync(join(__dirname, '..', '..', '..', 'bench', 'k8s', 'matrix.fio'), 'utf8');
  const docs: unknown[] = [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: namespace } },
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'fio-matrix', namespace }, data: { 'matrix.fio': matrix } },
  ];
  for (const storageClass of options.classes) {
    const name = jobName(storageClass);
    docs.push({
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name, namespace, labels: { 'trireme.io/bench': 'fio' } },
      spec: { accessModes: ['ReadWriteOnce'], storageClassName: storageClass, resources: { requests: { storage: options.size ?? '2Gi' } } },
    });
    docs.push({
      apiVersion: 'batch/v1',
      kind: 'Job',
      metadata: { name, namespace, labels: { 'trireme.io/bench': 'fio', 'trireme.io/storage-class': name.slice(4) } },
      spec: {
        backoffLimit: 0,
        // One run per class: bounded in time even if the volume hangs.
        activeDeadlineSeconds: 900,
        template: {
          metadata: { labels: { 'trireme.io/bench': 'fio' } },
          spec: {
            restartPolicy: 'Never',
            // Root without capabilities: a hostPath PV ignores fsGroup and its directory belongs to root, so a
            // non-root fio could not create its file there; the comparison must run the same pod on every class.
            securityContext: { runAsUser: 0, runAsGroup: 0, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [
              {
                name: 'fio',
                image: options.image ?? 'ghcr.io/trireme/fio:3.33',
                // Only the JSON goes to stdout: `kubectl logs job/NAME > NAME.json` is the result file.
                args: ['--output-format=json', '/jobs/matrix.fio'],
                resources: { requests: { cpu: '500m', memory: '256Mi' }, limits: { memory: '512Mi' } },
                securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } },
                volumeMounts: [
                  { name: 'data', mountPath: '/data' },
                  { name: 'jobs', mountPath: '/jobs', readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'data', persistentVolumeClaim: { claimName: name } },
              { name: 'jobs', configMap: { name: 'fio-matrix' } },
            ],
          },
        },
      },
    });
  }
  return docs.map((d) => stringify(d, { lineWidth: 0 })).join('---\n');
}

if (require.main === module) {
  const classes = process.argv.slice(2);
  process.stdout.write(generate({ classes: classes.length ? classes : DEFAULT_CLASSES }));
}
