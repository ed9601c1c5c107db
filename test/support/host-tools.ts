import { spawnSync } from 'node:child_process';
import type { TestContext } from 'node:test';

/** Whether an executable is on PATH. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v '${name.replace(/'/g, '')}'`], { stdio: 'ignore' }).status === 0;
}

/**
 * Guards a test that drives a host tool (iscsi-test-cu, qemu-io, tgtd, ...).
 * Under CI=true a missing tool fails the test: the CI script installs every
 * tool, so its absence is a broken set-up, never a reason to skip. Elsewhere
 * the test is skipped with the apt-get line that brings the tool.
 * Returns false when the caller should return early.
 */
export function requireTools(t: TestContext, tools: Record<string, string>): boolean {
  const missing = Object.keys(tools).filter((tool) => !hasTool(tool));
  if (missing.length === 0) return true;
  const packages = [...new Set(missing.map((tool) => tools[tool]))].join(' ');
  const message = `missing ${missing.join(', ')} (apt-get install ${packages})`;
  if (process.env.CI === 'true') throw new Error(message);
  t.skip(message);
  return false;
}
