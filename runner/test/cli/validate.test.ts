import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { command as validate } from '../../src/cli/validate.ts';
import { dispatch } from '../../src/cli/command.ts';
import { captureIO } from './cli-io.ts';

// The real components: the CLI always uses components/index.ts. These specs use only the ones
// that were there first (kafka source and sink, filter).
const VALID = `version: 1
name: cli-demo
sources:
  events:
    kafka: { brokers: "\${BROKERS:-localhost:9092}", topic: t, group: g }
steps:
  kept:
    from: events
    filter: a > 1
sinks:
  out:
    from: kept
    kafka: { brokers: localhost:9092, topic: o }
`;

function specFiles(specs: Record<string, string>): string[] {
  const dir = mkdtempSync(join(tmpdir(), 'sluice-validate-'));
  return Object.entries(specs).map(([name, text]) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    return file;
  });
}

describe('sluice validate', () => {
  it('exits 0 and says ok for valid specs', async () => {
    const [file] = specFiles({ 'ok.yaml': VALID });
    const io = captureIO();
    expect(await validate.run([file!], io)).toBe(0);
    expect(io.out()).toBe(`ok  ${file} (3 nodes)\n`);
    expect(io.err()).toBe('');
  });

  it('exits 2 and prints every error rustc-style with the source line, a caret and help', async () => {
    const [good, bad] = specFiles({ 'good.yaml': VALID, 'bad.yaml': VALID.replace('filter: a > 1', 'filter: a >').replace('from: kept', 'from: kep') });
    const io = captureIO();
    expect(await validate.run([good!, bad!], io)).toBe(2);
    expect(io.out()).toBe(`ok  ${good} (3 nodes)\n`);
    expect(io.err()).toBe(
      [
        `${bad}:9:15: error[E_EXPR_SYNTAX]: \`filter\` in step \`kept\` is not valid JSONata: Unexpected end of expression`,
        '  |',
        '9 |     filter: a >',
        '  |               ^',
        '',
        `${bad}:12:11: error[E_FROM_UNKNOWN]: sink \`out\` reads from \`kep\`, which is not a source or step (did you mean \`kept\`?)`,
        '   |',
        '12 |     from: kep',
        '   |           ^^^',
        '',
        '2 errors in 1 of 2 files',
        '',
      ].join('\n'),
    );
  });

  it('reports as JSON with --format json', async () => {
    const [bad] = specFiles({ 'bad.yaml': VALID.replace('topic: o', 'topic: "${OUT_TOPIC}"') });
    const io = captureIO();
    expect(await validate.run([bad!, '--format', 'json'], io)).toBe(2);
    expect(JSON.parse(io.out())).toEqual({
      valid: false,
      files: [
        {
          file: bad,
          valid: false,
          diagnostics: [
            {
              code: 'E_ENV_UNSET',
              message: 'environment variable `OUT_TOPIC` is not set and has no default',
              file: bad,
              line: 13,
              col: 47,
              span: 12,
              hint: 'set OUT_TOPIC, or give a default: `${OUT_TOPIC:-value}`',
            },
          ],
        },
      ],
    });
  });

  it('reads variables from the environment it is given', async () => {
    const [file] = specFiles({ 'env.yaml': VALID.replace('topic: o', 'topic: "${OUT_TOPIC}"') });
    expect(await validate.run([file!], captureIO({ OUT_TOPIC: 'x' }))).toBe(0);
  });

  it('applies --set and --profile', async () => {
    const [file] = specFiles({ 'p.yaml': VALID + 'profiles:\n  alt:\n    steps:\n      kept: { from: events, filter: "b >" }\n' });
    expect(await validate.run([file!, '--profile', 'alt'], captureIO())).toBe(2);
    expect(await validate.run([file!, '--profile', 'alt', '--set', 'steps.kept.filter=b > 2'], captureIO())).toBe(0);
  });

  it('reports a missing file as invalid, and usage errors with exit 2', async () => {
    const io = captureIO();
    expect(await validate.run(['/nonexistent/x.yaml'], io)).toBe(2);
    expect(io.err()).toContain('/nonexistent/x.yaml:1:1: error[E_FILE]: cannot read `/nonexistent/x.yaml`: no such file');
    const usage = captureIO();
    expect(await dispatch([validate], ['validate'], usage)).toBe(2);
    expect(usage.err()).toContain('sluice validate: name at least one spec file');
    expect(await dispatch([validate], ['validate', 'x.yaml', '--format', 'xml'], captureIO())).toBe(2);
  });

  it('prints its usage on --help', async () => {
    const io = captureIO();
    expect(await dispatch([validate], ['validate', '--help'], io)).toBe(0);
    expect(io.out()).toMatch(/^Usage: sluice validate <files\.\.\.>/);
  });

  it('exits 1 on an internal error', async () => {
    const broken = { ...validate, run: async () => { throw new Error('boom'); } };
    const io = captureIO();
    expect(await dispatch([broken], ['validate', 'x'], io)).toBe(1);
    expect(io.err()).toBe('sluice validate: internal error: boom\n');
  });
});
