import { BASIC_SPECS } from './basic-commands';
import type { CommandSpec } from './command-table';
import { COMPARE_AND_WRITE_SPEC } from './compare-and-write';
import { INQUIRY_SPEC } from './inquiry';
import { LEGACY_RESERVATION_SPECS } from './legacy-reservation';
import { MEDIUM_SPECS } from './medium-commands';
import { MODE_SPECS } from './mode-commands';
import { PR_IN_SPECS } from './pr-in';
import { PR_OUT_SPECS } from './pr-out';
import { PROVISIONING_SPECS } from './provisioning';
import { READ_WRITE_SPECS } from './read-write';
import { REPORT_SPECS } from './report-opcodes';
import { VERIFY_SPECS } from './verify';

/** Every command the target implements; the dispatch table is built from this list. */
export const ALL_SPECS: readonly CommandSpec[] = [
  INQUIRY_SPEC,
  ...BASIC_SPECS,
  ...READ_WRITE_SPECS,
  ...VERIFY_SPECS,
  ...PROVISIONING_SPECS,
  COMPARE_AND_WRITE_SPEC,
  ...MEDIUM_SPECS,
  ...MODE_SPECS,
  ...REPORT_SPECS,
  ...PR_IN_SPECS,
  ...PR_OUT_SPECS,
  ...LEGACY_RESERVATION_SPECS,
];
