export { ManagerServer, managerServiceClient, toVolumeMessage } from './manager-service';
export { ManagerClient } from './manager-client';
export type { ProcessMessage, VolumeMessage } from './manager-client';
export { DEMO_VOLUME, managerSocketPath, startStack } from './standalone-stack';
export type { Stack, StackOptions } from './standalone-stack';
