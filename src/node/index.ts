export type { ChapSecrets, DeviceAcquirer, VolumeTarget } from './device-acquirer';
export { createExecutor, HostCommandError, ProcessExecutor, type ExecutorMode, type HostExecutor, type RunOptions, type RunResult } from './executor';
export { HostOps, SUPPORTED_FS_TYPES } from './host-ops';
export { IscsiAcquirer, iscsiByPathLink } from './iscsi-acquirer';
export { MountTable, parseMountInfo, type MountEntry } from './mount-table';
export { CONTEXT_FS_TYPE, CONTEXT_IQN, CONTEXT_LUN, CONTEXT_PORTAL, SECRET_CHAP_MUTUAL_SECRET, SECRET_CHAP_MUTUAL_USER, SECRET_CHAP_SECRET, SECRET_CHAP_USER } from './node-context';
export { nodeReadinessCheck, nodeService, TOPOLOGY_NODE_KEY, type NodeServiceOptions } from './node-service';
