import { BASIC_SPECS } from './basic-commands';
import type { CommandSpec } from './command-table';
import { INQUIRY_SPEC } from './inquiry';
import { LEGACY_RESERVATION_SPECS } from './legacy-reservation';
import { MODE_SPECS } from './mode-commands';
import { READ_WRITE_SPECS } from './read-write';

/** Every command the target implements; the dispatch table is built from this list. */
export const ALL_SPECS: readonly CommandSpec[] = [INQUIRY_SPEC, ...BASIC_SPECS, ...READ_WRITE_SPECS, ...MODE_SPECS, ...LEGACY_RESERVATION_SPECS];
