import type { TaskSignal } from '../scsi/types';

/**
 * The abort switch of one task, handed to the SCSI layer as its signal. An
 * AbortController per command costs an EventTarget, its symbols and a
 * listener registry for every I/O, while a task is aborted only by task
 * management or a session's end; this keeps a plain list of listeners,
 * created when the first one registers.
 */
export class TaskAbort implements TaskSignal {
  aborted = false;
  private listeners: Array<() => void> | undefined;

  get signal(): TaskSignal {
    return this;
  }

  /** Sets `aborted` and calls each listener once (a later abort() does nothing). */
  abort(): void {
    if (this.aborted) return;
    this.aborted = true;
    const listeners = this.listeners;
    this.listeners = undefined;
    for (const listener of listeners ?? []) listener();
  }

  /** Like AbortSignal, a listener added after the abort is never called. */
  addEventListener(_type: 'abort', listener: () => void): void {
    if (this.aborted) return;
    (this.listeners ??= []).push(listener);
  }

  removeEventListener(_type: 'abort', listener: () => void): void {
    const listeners = this.listeners;
    if (!listeners) return;
    const at = listeners.indexOf(listener);
    if (at >= 0) listeners.splice(at, 1);
  }
}
