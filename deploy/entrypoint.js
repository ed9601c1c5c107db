#!/usr/bin/env node
'use strict';
/* global require, process */
// Entry point of the container image: dist/ is built in the image, so unlike
// bin/trireme.js nothing is compiled or installed at start (the root file
// system is read-only and the user unprivileged).
// eslint-disable-next-line @typescript-eslint/no-require-imports -- a CommonJS script, like bin/trireme.js
require('../dist/src/cli/main.js').main(process.argv).catch((err) => {
  process.stderr.write(`trireme: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
