import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';

// Module boundaries from DESIGN.md: which top-level areas each area may import.
const ALLOWED: Record<string, string[]> = {
  common: ['common'],
  iscsi: ['iscsi', 'common'],
  replica: ['replica', 'common'],
  node: ['node', 'common'],
  controller: ['controller', 'iscsi', 'replica', 'common'],
  cli: ['cli', 'controller', 'iscsi', 'replica', 'node', 'common'],
};

const srcRoot = resolve(__dirname, '..', '..', 'src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(full);
    return entry.name.endsWith('.ts') ? [full] : [];
  });
}

function localImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const specifiers = [...text.matchAll(/(?:from\s+|import\s*\(\s*|require\s*\(\s*)['"](\.{1,2}\/[^'"]+)['"]/g)].map((m) => m[1]);
  return specifiers
    .filter((s) => !s.endsWith('.json'))
    .map((s) => {
      // A dynamic import() names the compiled file (./x.js); the source is ./x.ts.
      const target = resolve(dirname(file), s.replace(/\.js$/, ''));
      for (const candidate of [`${target}.ts`, join(target, 'index.ts')]) {
        try {
          readFileSync(candidate);
          return candidate;
        } catch {
          // try the next form
        }
      }
      return `${target}.ts`;
    });
}

const areaOf = (file: string): string => relative(srcRoot, file).split(/[\\/]/)[0];
const graph = new Map(sourceFiles(srcRoot).map((file) => [file, localImports(file)]));

test('each area imports only the areas DESIGN.md allows', () => {
  const violations: string[] = [];
  for (const [file, imports] of graph) {
    const allowed = ALLOWED[areaOf(file)];
    assert.ok(allowed, `unknown area for ${relative(srcRoot, file)}`);
    for (const target of imports) {
      if (!allowed.includes(areaOf(target))) violations.push(`${relative(srcRoot, file)} -> ${relative(srcRoot, target)}`);
    }
  }
  assert.deepEqual(violations, []);
});

test('no import cycles between source files', () => {
  const state = new Map<string, 'visiting' | 'done'>();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]): void => {
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      cycles.push([...path.slice(path.indexOf(file)), file].map((f) => relative(srcRoot, f)).join(' -> '));
      return;
    }
    state.set(file, 'visiting');
    for (const target of graph.get(file) ?? []) if (graph.has(target)) visit(target, [...path, file]);
    state.set(file, 'done');
  };
  for (const file of graph.keys()) visit(file, []);
  assert.deepEqual(cycles, []);
});
