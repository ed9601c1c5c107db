import type { Logger } from '../../common/logger';
import type { SessionChannel, Task } from './session-types';

/**
 * Commands start in CmdSN order, each only once the connection's queued
 * output is under budget: a peer that stops reading cannot make the target
 * read data for every command in the window into memory. A command waits
 * here only while output is over budget; otherwise it starts at once, with
 * no promise in between (this is every I/O).
 */
export class StartQueue {
  private readonly queue: Task[] = [];
  private waiting = false;

  constructor(
    private readonly channel: SessionChannel,
    private readonly start: (task: Task) => void,
    private readonly logger: Logger,
  ) {}

  push(task: Task): void {
    if (this.queue.length === 0 && this.channel.writableNow) {
      this.start(task);
      return;
    }
    this.queue.push(task);
    this.drain();
  }

  /** Starts queued commands in order while output stays under budget; waits for the channel otherwise. */
  private drain(): void {
    if (this.waiting) return;
    while (this.queue.length > 0) {
      if (!this.channel.writableNow) {
        this.waiting = true;
        this.channel.writable().then(
          () => {
            this.waiting = false;
            this.drain();
          },
          (err: unknown) => this.logger.error({ err }, 'commands could not start'),
        );
        return;
      }
      this.start(this.queue.shift() as Task);
    }
  }
}
