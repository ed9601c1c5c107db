export { KubeClient, retryOnConflict } from './kube-client';
export { KubernetesOrchestrator } from './kubernetes-orchestrator';
export { Reconciler, statusFrom } from './reconciler';
export { createKubernetesOrchestrator } from './factory';
export * from './names';
export type { TriremeVolume, TriremeVolumeSpec, TriremeVolumeStatus } from './types';
export type { WorkloadSettings } from './manifests';
export type { VolumeControlClient, ControlConnector } from './volume-control-client';
