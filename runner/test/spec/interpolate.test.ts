import { describe, expect, it } from 'vitest';
import { interpolateString, retype } from '../../src/spec/interpolate.ts';
import { loadSpecText } from '../../src/spec/load.ts';

describe('interpolateString', () => {
  it('substitutes set variables and defaults', () => {
    expect(interpolateString('${A}:${B:-9092}', { A: 'host' }).value).toBe('host:9092');
  });

  it('uses the default when the variable is set but empty, like the shell', () => {
    expect(interpolateString('${A:-x}', { A: '' }).value).toBe('x');
    expect(interpolateString('${A}', { A: '' }).value).toBe('');
  });

  it('takes everything after `:-` up to the closing brace as the default, colons included', () => {
    expect(interpolateString('${BROKERS:-localhost:9092,other:9093}', {}).value).toBe('localhost:9092,other:9093');
  });

  it('reports an unset variable without a default at its `${`', () => {
    const r = interpolateString('pw=${SECRET} ok', {});
    expect(r.problems).toEqual([{ kind: 'unset', text: 'SECRET', start: 3, end: 12 }]);
    expect(r.value).toBe('pw=${SECRET} ok');
  });

  it('turns `$${` into a literal `${` without interpolating it', () => {
    const r = interpolateString('cost $${A} and ${B}', { A: 'no', B: 'yes' });
    expect(r.value).toBe('cost ${A} and yes');
    expect(r.problems).toEqual([]);
  });

  it('leaves JSONata variables and functions alone', () => {
    const r = interpolateString('$count() + $meta.op + $', {});
    expect(r.value).toBe('$count() + $meta.op + $');
    expect(r.changed).toBe(false);
  });

  it('reports malformed references', () => {
    expect(interpolateString('${A', {}).problems).toEqual([{ kind: 'syntax', text: '${A', start: 0, end: 3 }]);
    expect(interpolateString('x ${1A} y', {}).problems).toEqual([{ kind: 'syntax', text: '${1A}', start: 2, end: 7 }]);
  });

  it('maps result indexes back to the original string', () => {
    const r = interpolateString('${A}+bad', { A: 'long value' });
    expect(r.value).toBe('long value+bad');
    expect(r.originalIndex(0)).toBe(0); // inside the substitution: its `${`
    expect(r.originalIndex(9)).toBe(0);
    expect(r.originalIndex(10)).toBe(4); // `+`
    expect(r.originalIndex(13)).toBe(7);
  });
});

describe('interpolation in a document', () => {
  const text = ['version: 1', 'a: ${HOST}', 'b: "x ${PORT}"', 'c: |', '  one', '  two ${MISSING} three', 'd: ${HOST:-h}'].join('\n');

  it('replaces values in place', () => {
    const loaded = loadSpecText('s.yaml', text, { env: { HOST: 'kafka', PORT: '9' } });
    expect(loaded.value).toMatchObject({ a: 'kafka', b: 'x 9', d: 'kafka' });
  });

  it('reports each unset variable at its exact line and column, block scalars included', () => {
    const loaded = loadSpecText('s.yaml', text, { env: {} });
    const unset = loaded.diagnostics.filter((d) => d.code === 'E_ENV_UNSET').map((d) => `${d.line}:${d.col}:${d.span}`);
    expect(unset).toEqual(['2:4:7', '3:7:7', '6:7:10']);
  });

  it('does not report variables only an unused profile needs', () => {
    const spec = ['a: 1', 'profiles:', '  prod:', '    sources:', '      s: { kafka: { password: "${PW}" } }'].join('\n');
    expect(loadSpecText('s.yaml', spec, {}).diagnostics).toEqual([]);
    const withProfile = loadSpecText('s.yaml', spec, { profile: 'prod' });
    expect(withProfile.diagnostics.map((d) => [d.code, d.line, d.col])).toEqual([['E_ENV_UNSET', 5, 32]]);
  });

  it('reads `${VAR}` in a flow map, where its braces would otherwise be YAML syntax', () => {
    const flow = 'kafka: { brokers: ${BROKERS:-localhost:9092}, topic: "${T}", key: $string(id) }\nx: $${literal}\n';
    const loaded = loadSpecText('s.yaml', flow, { env: { T: 'events' } });
    expect(loaded.diagnostics).toEqual([]);
    expect(loaded.value).toEqual({ kafka: { brokers: 'localhost:9092', topic: 'events', key: '$string(id)' }, x: '${literal}' });
    const unset = loadSpecText('s.yaml', flow, {}).diagnostics.map((d) => [d.code, d.line, d.col, d.span]);
    expect(unset).toEqual([['E_ENV_UNSET', 1, 55, 4]]);
  });

  it('reads an unquoted interpolated number or boolean as one, and keeps quoted ones strings', () => {
    const spec = 'port: ${PORT:-5432}\nquoted: "${PORT:-5432}"\ntls: ${TLS:-false}\nhost: ${HOST:-a:1}\n';
    expect(loadSpecText('s.yaml', spec, {}).value).toEqual({ port: 5432, quoted: '5432', tls: false, host: 'a:1' });
  });
});

describe('retype', () => {
  it('turns numbers and booleans into values and leaves everything else as text', () => {
    expect(retype('42')).toBe(42);
    expect(retype('true')).toBe(true);
    expect(retype('')).toBe('');
    expect(retype('a: b')).toBe('a: b');
    expect(retype('[1')).toBe('[1');
  });
});
