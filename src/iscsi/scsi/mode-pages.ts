import type { LogicalUnit } from './logical-unit';

/** Page control field of MODE SENSE (SPC-4 §6.11, table 159). */
export const enum PageControl {
  Current = 0,
  Changeable = 1,
  Default = 2,
  Saved = 3,
}

/** A mode page: current values and the mask of bits MODE SELECT may change. */
export interface ModePage {
  readonly code: number;
  current(lu: LogicalUnit): Buffer;
  /** Same length as `current`; a set bit may be changed. Trireme changes none. */
  changeable(): Buffer;
}

function fixedPage(code: number, build: (page: Buffer) => void, length: number): ModePage {
  return {
    code,
    current: () => {
      const page = Buffer.alloc(length + 2);
      page[0] = code;
      page[1] = length;
      build(page);
      return page;
    },
    changeable: () => {
      const page = Buffer.alloc(length + 2);
      page[0] = code;
      page[1] = length;
      return page;
    },
  };
}

/**
 * Caching (SBC-3 §6.4.5): a volatile write cache (WCE=1, RCD=0; DESIGN.md
 * invariant 8). WCE is not changeable: replicas acknowledge from the page
 * cache and there is no write-through mode to switch to.
 */
const CACHING = fixedPage(
  0x08,
  (page) => {
    page[2] = 0x04; // WCE
  },
  0x12,
);

/**
 * Control (SPC-4 §7.5.8): fixed-format sense (D_SENSE=0), unrestricted
 * reordering (QUEUE ALGORITHM MODIFIER 1), QERR=0, TAS=0, no busy timeout limit.
 */
const CONTROL = fixedPage(
  0x0a,
  (page) => {
    page[3] = 0x10;
    page.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
  },
  0x0a,
);

/** Informational Exceptions Control (SPC-4 §7.5.11): nothing to report, DEXCPT=1. */
const INFORMATIONAL_EXCEPTIONS = fixedPage(
  0x1c,
  (page) => {
    page[2] = 0x08;
  },
  0x0a,
);

/** Pages in ascending code order: the order of "return all pages" (page code 3Fh). */
export const MODE_PAGES: readonly ModePage[] = [CACHING, CONTROL, INFORMATIONAL_EXCEPTIONS];

export function findModePage(code: number): ModePage | undefined {
  return MODE_PAGES.find((p) => p.code === code);
}

/** A page's values for a page control: default equals current, nothing is saved. */
export function pageValues(page: ModePage, pc: PageControl, lu: LogicalUnit): Buffer {
  return pc === PageControl.Changeable ? page.changeable() : page.current(lu);
}
