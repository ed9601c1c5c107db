/**
 * The SCSI layer of the iSCSI target (SPC-4 / SBC-3): the transport calls it
 * only through the ScsiTarget interface.
 */
import type { Logger } from '../../common/logger';
import type { Registry } from '../../common/metrics';
import type { BlockDevice } from '../block-device';
import { createTarget } from './target';
import type { ScsiTarget } from './types';

export function createScsiTarget(options: {
  iqn: string;
  luns: ReadonlyArray<{ lun: number; device: BlockDevice }>;
  logger: Logger;
  registry?: Registry;
}): ScsiTarget {
  return createTarget(options);
}

export { ASC, ScsiError, buildSense, deviceErrorToScsi } from './sense';
export type { Nexus, ScsiCommand, ScsiResult, ScsiTarget, TaskAttribute } from './types';
