import { resolve } from 'node:path';

/**
 * The script that runs the `trireme` CLI of this very build: the compiled entry
 * (dist/src/cli/entry.js), not bin/trireme.js, whose build check must never
 * recompile the tree under a running test. $TRIREME_BIN overrides it (a packaged build).
 */
export const TRIREME_ENTRY = process.env.TRIREME_BIN || resolve(__dirname, '..', '..', 'src', 'cli', 'entry.js');
