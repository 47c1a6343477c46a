/**
 * The direction of flow the folders promise (README, Layout): the engine never imports a component
 * (nor the spec, plan, CLI or I/O layers above it), and components never import each other: only
 * the registry, components/index.ts, knows them all. Read from the source's import statements.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const SRC = resolve(dirname(fileURLToPath(import.meta.url)), '../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(path);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [path] : [];
  });
}

/** The relative imports of a TypeScript file (static, type-only and dynamic), as paths under src/. */
function relativeImports(file: string, text: string): string[] {
  const specifiers = [...text.matchAll(/(?:\bfrom\s+|\bimport\s*\(\s*|^\s*import\s+)['"](\.{1,2}\/[^'"]+)['"]/gm)].map((m) => m[1]!);
  return specifiers.map((s) => relative(SRC, resolve(dirname(file), s)));
}

/** A component's own name: `sources/kafka` for sources/kafka.ts and for files under sources/kafka/. */
function componentOf(path: string): string | undefined {
  const m = /^components\/(sources|steps|sinks|formats)\/([^/.]+)/.exec(path);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

const imports = sourceFiles(SRC).map((file) => {
  const from = relative(SRC, file);
  return { from, to: relativeImports(file, readFileSync(file, 'utf8')) };
});

describe('layers', () => {
  it('reads the imports of the source tree', () => {
    // Guards the two rules below against a parser that finds nothing.
    expect(imports.length).toBeGreaterThan(100);
    expect(imports.find((i) => i.from === 'components/index.ts')?.to).toContain('components/sources/kafka.ts');
    expect(relativeImports(join(SRC, 'engine/a.ts'), "import type { X } from '../plan/x.ts';\nconst m = await import('./y.ts');")).toEqual(['plan/x.ts', 'engine/y.ts']);
  });

  it('the engine imports only the engine', () => {
    const outside = imports.filter((i) => i.from.startsWith('engine/')).flatMap((i) => i.to.filter((t) => !t.startsWith('engine/')).map((t) => `${i.from} -> ${t}`));
    expect(outside).toEqual([]);
  });

  it('a component imports no other component; only the registry knows them all', () => {
    const crossing = imports
      .filter((i) => componentOf(i.from) !== undefined)
      .flatMap((i) => i.to.filter((t) => t.startsWith('components/') && componentOf(t) !== componentOf(i.from)).map((t) => `${i.from} -> ${t}`));
    expect(crossing).toEqual([]);
  });

  it('the I/O layer imports no component, plan, spec, CLI or HTTP code', () => {
    const upward = imports.filter((i) => i.from.startsWith('io/')).flatMap((i) => i.to.filter((t) => /^(components|plan|spec|cli|http)\//.test(t)).map((t) => `${i.from} -> ${t}`));
    expect(upward).toEqual([]);
  });
});
