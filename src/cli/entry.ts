import { main } from './main';

// The compiled program that processes Trireme starts itself run (controllers
// and replicas under `trireme up`, tests): bin/trireme.js first checks that the
// build is current, which a child must never do behind its parent's back.
main(process.argv).catch((err: unknown) => {
  process.stderr.write(`trireme: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
