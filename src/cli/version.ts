import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** Trireme's version, read from package.json (dist/src/cli -> the package root) so it has one source. */
export const VERSION: string = (JSON.parse(readFileSync(join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string }).version;
