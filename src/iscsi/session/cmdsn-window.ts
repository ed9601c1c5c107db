/**
 * Serial number arithmetic over 32 bits (RFC 1982, used by RFC 7143 §4.2.2.1).
 */
export function snLess(a: number, b: number): boolean {
  return a !== b && ((a - b) >>> 0) > 0x80000000 - 1;
}

export const snAdd = (a: number, n: number): number => (a + n) >>> 0;

/**
 * The session's command window (RFC 7143 §4.2.2.1): ExpCmdSN is the next
 * CmdSN not yet received, MaxCmdSN = ExpCmdSN + depth - 1 bounds what the
 * initiator may send. Non-immediate work runs in CmdSN order: an entry
 * waits until every lower CmdSN has run, whatever order they arrived in.
 * Immediate PDUs (I bit) bypass ordering and never advance ExpCmdSN.
 */
export class CmdSnWindow {
  expCmdSN: number;
  private nextRunSN: number;
  /** Accepted CmdSNs above a gap, waiting for ExpCmdSN to reach them. */
  private readonly ahead = new Set<number>();
  private readonly ready = new Map<number, () => void>();

  constructor(initialCmdSN: number, readonly depth: number) {
    this.expCmdSN = initialCmdSN >>> 0;
    this.nextRunSN = this.expCmdSN;
  }

  get maxCmdSN(): number {
    return snAdd(this.expCmdSN, this.depth - 1);
  }

  /** Entries accepted but not yet run (bounded by the window depth). */
  get backlog(): number {
    return ((this.expCmdSN - this.nextRunSN) >>> 0) + this.ahead.size;
  }

  /**
   * Registers a non-immediate CmdSN. False when it lies outside the window or
   * was seen already: RFC 7143 §4.2.2.1 says such PDUs are silently ignored.
   */
  accept(cmdSN: number): boolean {
    if (snLess(cmdSN, this.expCmdSN) || snLess(this.maxCmdSN, cmdSN) || this.ahead.has(cmdSN)) return false;
    this.ahead.add(cmdSN);
    while (this.ahead.delete(this.expCmdSN)) this.expCmdSN = snAdd(this.expCmdSN, 1);
    return true;
  }

  /** Marks an accepted CmdSN ready to run; runs every entry whose turn has come. */
  markReady(cmdSN: number, run: () => void): void {
    // An entry that already ran (a task aborted after its turn) has nothing left to hold up.
    if (snLess(cmdSN, this.nextRunSN)) return;
    this.ready.set(cmdSN, run);
    for (let next = this.ready.get(this.nextRunSN); next; next = this.ready.get(this.nextRunSN)) {
      this.ready.delete(this.nextRunSN);
      this.nextRunSN = snAdd(this.nextRunSN, 1);
      next();
    }
  }

  /** Drops an accepted CmdSN whose task was aborted before it ran; it no longer holds up later ones. */
  cancel(cmdSN: number): void {
    this.markReady(cmdSN, () => undefined);
  }
}
