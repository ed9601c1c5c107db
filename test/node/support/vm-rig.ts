import assert from 'node:assert/strict';
import type { VmGuest } from '../../support/vm-guest';
import type { CsiServiceName, CsiTestClient } from './csi-client';

/** A CSI driver whose node is a VM guest, as the VM tests drive it. */
export interface GuestRig {
  readonly guest: VmGuest;
  /** A CSI call; a failed call's error carries the guest's state after the gRPC status text. */
  call<T = Record<string, unknown>>(service: CsiServiceName, method: string, request?: object): Promise<T>;
  /** Runs a shell script in the guest; fails the test, with the guest's state, when it exits non-zero. */
  sh(script: string): Promise<string>;
  /** "Method ms" of every call so far, for the tests' diagnostics. */
  readonly timings: string[];
}

export function guestRig(guest: VmGuest, client: CsiTestClient): GuestRig {
  const timings: string[] = [];
  return {
    guest,
    timings,
    sh: async (script) => {
      try {
        return (await guest.executor.run('sh', ['-c', script])).stdout;
      } catch (err) {
        return assert.fail(`guest: ${(err as Error).message}\n${await guest.state()}`);
      }
    },
    call: async <T>(service: CsiServiceName, method: string, request?: object): Promise<T> => {
      const started = Date.now();
      try {
        const reply = await client.call<T>(service, method, request);
        timings.push(`${method} ${Date.now() - started} ms`);
        return reply;
      } catch (err) {
        timings.push(`${method} failed after ${Date.now() - started} ms`);
        // The gRPC status text stays first, for the matchers; the guest's state follows it.
        (err as Error).message += `\n--- guest state ---\n${await guest.state()}`;
        throw err;
      }
    },
  };
}
