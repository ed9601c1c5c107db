/**
 * Time as the engine sees it: injected so the simulation test can run the
 * engine on a virtual clock, deterministically and faster than real time.
 */
export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  setTimer(ms: number, fn: () => void): TimerHandle;
}

export const systemClock: Clock = {
  now: () => performance.now(),
  setTimer(ms, fn) {
    const timer = setTimeout(fn, ms);
    // A pending timeout must not keep a finished process alive.
    timer.unref();
    return { cancel: () => clearTimeout(timer) };
  },
};

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimer(ms, resolve));
}
