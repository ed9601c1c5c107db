export { CSI_LOADER_OPTIONS, csiClientConstructors, csiServices } from './proto';
export { CsiError, aborted, alreadyExists, failedPrecondition, internal, invalidArgument, notFound, outOfRange, resourceExhausted, unavailable } from './errors';
export { checkRequired, redactSecrets, toGrpcError, wrapService, type CallSpec, type ServiceSpec } from './call-wrapper';
export { KeyedLocks } from './keyed-locks';
export { CSI_DRIVER_NAME, identityService, type IdentityOptions } from './identity';
export { parseCsiEndpoint, startCsiServer, type CsiServerOptions, type RunningCsiServer } from './server';
export { CSI_FS_TYPES, DEFAULT_FS_TYPE, SUPPORTED_ACCESS_MODES, isBlockCapability, unsupportedCapabilityReason } from './capabilities';
export { CHAP_SECRET_KEYS, VOLUME_CONTEXT_KEYS } from './volume-context';
export type * from './types';
