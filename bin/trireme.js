#!/usr/bin/env node
'use strict';
// Entry point of the `trireme` binary: builds on first use so a fresh checkout runs as is.
require('../scripts/bootstrap.js').ensureBuilt();
require('../dist/src/cli/main.js').main(process.argv).catch((err) => {
  process.stderr.write(`trireme: ${err && err.message ? err.message : err}\n`);
  process.exit(1);
});
