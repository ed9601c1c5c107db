/** The changeable mode parameters of one LU (ModeState holds them). */
export interface ModeState {
  softwareWriteProtect: boolean;
}

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
  current(state: ModeState): Buffer;
  /** Same length as `current`; a set bit may be changed by MODE SELECT. */
  changeable(): Buffer;
  /** Takes the changeable fields of a checked MODE SELECT page; true when a current value changed. */
  apply(state: ModeState, page: Buffer): boolean;
}

/** One changeable bit of a page, held in the ModeState. */
interface ChangeableBit {
  readonly byte: number;
  readonly mask: number;
  get(state: ModeState): boolean;
  set(state: ModeState, on: boolean): void;
}

function fixedPage(code: number, build: (page: Buffer) => void, length: number, bits: readonly ChangeableBit[] = []): ModePage {
  const empty = (): Buffer => {
    const page = Buffer.alloc(length + 2);
    page[0] = code;
    page[1] = length;
    return page;
  };
  return {
    code,
    current: (state) => {
      const page = empty();
      build(page);
      for (const bit of bits) if (bit.get(state)) page[bit.byte] |= bit.mask;
      return page;
    },
    changeable: () => {
      const page = empty();
      for (const bit of bits) page[bit.byte] |= bit.mask;
      return page;
    },
    apply: (state, page) => {
      let changed = false;
      for (const bit of bits) {
        const on = (page[bit.byte] & bit.mask) !== 0;
        if (on !== bit.get(state)) changed = true;
        bit.set(state, on);
      }
      return changed;
    },
  };
}

/** SWP, byte 4 bit 3 of the Control page (SPC-4 §7.5.8, table 456). */
const SWP: ChangeableBit = {
  byte: 4,
  mask: 0x08,
  get: (state) => state.softwareWriteProtect,
  set: (state, on) => {
    state.softwareWriteProtect = on;
  },
};

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
 * reordering (QUEUE ALGORITHM MODIFIER 1), QERR=0, TAS=0, no busy timeout
 * limit. SWP (software write protect) is the one changeable field.
 */
const CONTROL = fixedPage(
  0x0a,
  (page) => {
    page[3] = 0x10;
    page.writeUInt16BE(0xffff, 8); // BUSY TIMEOUT PERIOD: unlimited
  },
  0x0a,
  [SWP],
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

/** Default values of the changeable fields: all off. */
const DEFAULTS: ModeState = { softwareWriteProtect: false };

export function findModePage(code: number): ModePage | undefined {
  return MODE_PAGES.find((p) => p.code === code);
}

/** A page's values for a page control; nothing is saved. */
export function pageValues(page: ModePage, pc: PageControl, state: ModeState): Buffer {
  if (pc === PageControl.Changeable) return page.changeable();
  return pc === PageControl.Default ? page.current(DEFAULTS) : page.current(state);
}
