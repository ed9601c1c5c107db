import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';

/**
 * The part of kustomize the deploy/ tree uses, rendered in-process because no
 * kustomize or kubectl binary is available here: `resources` (files and other
 * kustomization directories) and `patches` that are JSON 6902 operation lists
 * with a target (group, version, kind, name). Anything else in a
 * kustomization.yaml is refused, so the overlays cannot silently outgrow what
 * this renderer (and so the tests) understands.
 */

export type Manifest = { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; [k: string]: unknown }; [k: string]: unknown };

interface Kustomization {
  resources?: string[];
  patches?: Array<{ path?: string; patch?: string; target: { group?: string; version?: string; kind: string; name: string } }>;
}

const KNOWN_KEYS = new Set(['apiVersion', 'kind', 'resources', 'patches']);

export const REPO = resolve(__dirname, '..', '..', '..');

export function loadYamlFile(file: string): Manifest[] {
  const docs = parseAllDocuments(readFileSync(file, 'utf8'));
  const out: Manifest[] = [];
  for (const doc of docs) {
    if (doc.errors.length) throw new Error(`${file}: ${doc.errors[0].message}`);
    const value = doc.toJS() as Manifest | null;
    if (value) out.push(value);
  }
  return out;
}

export function render(dir: string): Manifest[] {
  const k = loadYamlFile(join(dir, 'kustomization.yaml'))[0] as unknown as Kustomization & Record<string, unknown>;
  for (const key of Object.keys(k)) if (!KNOWN_KEYS.has(key)) throw new Error(`${dir}/kustomization.yaml: "${key}" is not supported by the test renderer`);
  const out: Manifest[] = [];
  for (const r of k.resources ?? []) {
    const path = join(dir, r);
    out.push(...(r.endsWith('.yaml') ? loadYamlFile(path) : render(path)));
  }
  for (const p of k.patches ?? []) {
    const ops = (p.path ? loadYamlFile(join(dir, p.path))[0] : JSON.parse(p.patch ?? '[]')) as unknown as PatchOp[];
    const targets = out.filter((m) => m.kind === p.target.kind && m.metadata.name === p.target.name && (!p.target.group || m.apiVersion.startsWith(`${p.target.group}/`)));
    if (targets.length !== 1) throw new Error(`${dir}: patch target ${p.target.kind}/${p.target.name} matched ${targets.length} objects`);
    for (const op of ops) applyOp(targets[0], op);
  }
  return out;
}

export interface PatchOp {
  op: 'replace' | 'add' | 'remove' | 'test';
  path: string;
  value?: unknown;
}

/** RFC 6902 on one object; a path that does not exist fails, as kustomize does. */
export function applyOp(target: unknown, op: PatchOp): void {
  const parts = op.path.split('/').slice(1).map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'));
  const last = parts.pop();
  if (last === undefined) throw new Error(`bad patch path "${op.path}"`);
  let node = target as Record<string, unknown>;
  for (const part of parts) {
    const next = node[part];
    if (next === undefined || next === null || typeof next !== 'object') throw new Error(`patch path ${op.path}: "${part}" does not exist`);
    node = next as Record<string, unknown>;
  }
  const isArray = Array.isArray(node);
  if (op.op === 'test') {
    if (JSON.stringify(node[last]) !== JSON.stringify(op.value)) throw new Error(`patch test ${op.path} failed`);
  } else if (op.op === 'replace') {
    if (!(last in node)) throw new Error(`patch replace ${op.path}: no such member`);
    node[last] = op.value;
  } else if (op.op === 'add') {
    if (isArray) (node as unknown as unknown[]).splice(last === '-' ? (node as unknown as unknown[]).length : Number(last), 0, op.value);
    else node[last] = op.value;
  } else if (op.op === 'remove') {
    if (!(last in node)) throw new Error(`patch remove ${op.path}: no such member`);
    if (isArray) (node as unknown as unknown[]).splice(Number(last), 1);
    else delete node[last];
  }
}
