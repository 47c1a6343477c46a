import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadPipeline } from '../../src/plan/load-pipeline.ts';
import { renderDiagnostic } from '../../src/spec/diagnostic.ts';

const DIR = join(import.meta.dirname, '../../../pipelines');
const files = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'))
  .map((f) => join(DIR, f));

/** The profile names a spec defines. */
function profilesOf(file: string): string[] {
  // A spec that does not parse has its YAML error reported by the test without a profile.
  const value: unknown = parseDocument(readFileSync(file, 'utf8')).toJS();
  const profiles = typeof value === 'object' && value !== null ? (value as { profiles?: unknown }).profiles : undefined;
  return typeof profiles === 'object' && profiles !== null ? Object.keys(profiles) : [];
}

describe('pipelines/*.yaml', () => {
  it('exist', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    for (const profile of [undefined, ...profilesOf(file)]) {
      it(`${file.slice(DIR.length + 1)}${profile ? ` --profile ${profile}` : ''} validates with only its defaults`, async () => {
        const result = await loadPipeline(file, { env: {}, ...(profile ? { profile } : {}) });
        const errors = result.ok ? [] : result.diagnostics.map((d) => renderDiagnostic(d, result.loaded.text));
        expect(errors).toEqual([]);
      });
    }
  }
});
