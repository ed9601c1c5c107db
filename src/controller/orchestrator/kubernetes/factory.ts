import { readFileSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';
import { InvalidArgumentError } from '../../../common/errors';
import type { OrchestratorFactory } from '../../csi/orchestrator';
import { KubeClient } from './kube-client';
import { KubernetesOrchestrator } from './kubernetes-orchestrator';
import type { WorkloadSettings } from './manifests';
import { DEFAULT_REPLICA_NODE_GRACE_MS, parseGrace } from './node-health';
import { Reconciler } from './reconciler';
import { grpcConnector } from './volume-control-client';

const SA_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

function parseSelector(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter(Boolean)) {
    const [k, v] = part.split('=');
    if (!k || v === undefined) throw new InvalidArgumentError(`TRIREME_NODE_SELECTOR: expected key=value[,key=value], got "${text}"`);
    out[k.trim()] = v.trim();
  }
  return out;
}

/**
 * `trireme csi --orchestrator kubernetes`, configured from the environment the
 * controller Deployment sets (deploy/kustomize/base/controller.yaml): in-cluster
 * credentials, the pod's namespace, the image per-volume pods run.
 */
export const createKubernetesOrchestrator: OrchestratorFactory = async ({ logger, config: flags }) => {
  const env = process.env;
  // Flags first: a bad one is reported as such, before any cluster access can fail for another reason.
  const replicaNodeGraceMs = flags['replica-node-grace'] === undefined ? DEFAULT_REPLICA_NODE_GRACE_MS : parseGrace(flags['replica-node-grace']);
  const config = new KubeConfig();
  config.loadFromDefault();
  const namespace = env.TRIREME_NAMESPACE ?? readFileSync(SA_NAMESPACE, 'utf8').trim();
  if (!env.TRIREME_IMAGE) throw new InvalidArgumentError('TRIREME_IMAGE must name the image per-volume pods run');
  const settings: WorkloadSettings = {
    namespace,
    image: env.TRIREME_IMAGE,
    imagePullPolicy: env.TRIREME_IMAGE_PULL_POLICY ?? 'IfNotPresent',
    dataRoot: env.TRIREME_DATA_ROOT ?? '/var/lib/trireme/volumes',
    serviceAccount: env.TRIREME_VOLUME_SERVICE_ACCOUNT ?? 'trireme-volume',
  };
  const nodeSelector = parseSelector(env.TRIREME_NODE_SELECTOR ?? '');
  const nodeCapacityBytes = Number(env.TRIREME_NODE_CAPACITY_BYTES ?? '0');
  const kube = new KubeClient(config, namespace);
  const orchestrator = new KubernetesOrchestrator({ kube, settings, logger, connect: grpcConnector, nodeSelector, nodeCapacityBytes });
  const reconciler = new Reconciler({ kube, settings, logger: logger.child({ component: 'reconciler' }), connect: grpcConnector, nodeSelector, replicaNodeGraceMs });
  await reconciler.start();
  return Object.assign(orchestrator, {
    close: async () => {
      await reconciler.stop();
      orchestrator.close();
    },
  });
};
