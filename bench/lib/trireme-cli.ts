import { resolve } from 'node:path';

/**
 * The script that runs the `trireme` CLI of this build from a benchmark: the
 * compiled entry (dist/bench/lib -> dist/src/cli/entry.js), not bin/trireme.js,
 * whose build check has no place in a measured run. $TRIREME_BIN overrides it.
 */
export const TRIREME_ENTRY = process.env.TRIREME_BIN || resolve(__dirname, '..', '..', 'src', 'cli', 'entry.js');
