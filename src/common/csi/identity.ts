import type { Logger } from '../logger';
import type { ServiceSpec } from './call-wrapper';

export const CSI_DRIVER_NAME = 'csi.trireme.io';

export interface IdentityOptions {
  readonly version: string;
  /** Whether this process serves the Controller service (modes controller and all). */
  readonly controllerService: boolean;
  /** Each dependency's readiness check; Probe is ready only when all of them answer true. */
  readonly readinessChecks: ReadonlyArray<{ name: string; check: () => Promise<boolean> }>;
  readonly logger: Logger;
}

/** Probe checks run in parallel, each bounded so a hung dependency reads as not ready. */
const PROBE_CHECK_TIMEOUT_MS = 5000;

async function runCheck(item: { name: string; check: () => Promise<boolean> }, logger: Logger): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), PROBE_CHECK_TIMEOUT_MS);
  });
  try {
    const ok = await Promise.race([item.check(), timeout]);
    if (!ok) logger.warn({ dependency: item.name }, 'readiness check failed');
    return ok;
  } catch (err) {
    logger.warn({ dependency: item.name, err }, 'readiness check failed');
    return false;
  } finally {
    clearTimeout(timer);
  }
}

/** The CSI Identity service (spec §"Identity Service RPC"). */
export function identityService(options: IdentityOptions): ServiceSpec {
  return {
    GetPluginInfo: {
      handler: async () => ({ name: CSI_DRIVER_NAME, vendor_version: options.version, manifest: {} }),
    },
    GetPluginCapabilities: {
      handler: async () => {
        const capabilities: object[] = [];
        if (options.controllerService) capabilities.push({ service: { type: 'CONTROLLER_SERVICE' } });
        // Volumes are reachable from any node over iSCSI, but the node reports its
        // topology segment so a CO can express node affinity when it wants to.
        capabilities.push({ service: { type: 'VOLUME_ACCESSIBILITY_CONSTRAINTS' } });
        capabilities.push({ volume_expansion: { type: 'ONLINE' } });
        return { capabilities };
      },
    },
    Probe: {
      handler: async () => {
        const results = await Promise.all(options.readinessChecks.map((item) => runCheck(item, options.logger)));
        return { ready: { value: results.every(Boolean) } };
      },
    },
  };
}
