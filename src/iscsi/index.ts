/** The iSCSI target: a server of BlockDevices to iSCSI initiators (RFC 7143). */
export { IscsiServer, type IscsiServerOptions } from './server';
export type { TargetConfig, ChapCredentials } from './target-config';
export type { BlockDevice } from './block-device';
export { BlockDeviceError } from './block-device';
