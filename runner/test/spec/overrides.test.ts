/**
 * `--set` changes what a spec has; `--add` adds what it has not. A mistyped name in `--set` must be
 * refused, not turned into a new source (issue 11, item 11).
 */
import { describe, expect, it } from 'vitest';
import { positionText } from '../../src/spec/diagnostic.ts';
import { loadSpecText, parseSetArgument, type LoadOptions } from '../../src/spec/load.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { fakeComponents } from './fake-components.ts';

const SPEC = [
  'version: 1',
  'name: demo',
  'sources:',
  '  events:',
  '    kafka: { topic: t }',
  'sinks:',
  '  out:',
  '    from: events',
  '    file: { path: out.jsonl }',
  '',
].join('\n');

function load(options: { set?: string[]; add?: string[]; profile?: string }) {
  const loadOptions: LoadOptions = {
    env: {},
    sets: (options.set ?? []).map((a) => parseSetArgument(a, '--set')),
    adds: (options.add ?? []).map((a) => parseSetArgument(a, '--add')),
  };
  const loaded = loadSpecText('p.yaml', SPEC, loadOptions);
  const { diagnostics, valid } = validateSpec(loaded, fakeComponents);
  return { value: loaded.value as Record<string, Record<string, unknown>>, problems: diagnostics.map((d) => `${positionText(d)} ${d.code} ${d.message}`), valid };
}

describe('--set', () => {
  it('changes a value that exists', () => {
    const r = load({ set: ['sources.events.kafka.topic=other'] });
    expect(r.problems).toEqual([]);
    expect(r.value.sources!.events).toEqual({ kafka: { topic: 'other' } });
  });

  it('adds a key to a component config that exists (the schema then judges it)', () => {
    const r = load({ set: ['sources.events.kafka.start=earliest'] });
    expect(r.problems).toEqual([]);
    expect(r.value.sources!.events).toEqual({ kafka: { topic: 't', start: 'earliest' } });
  });

  it('replaces a whole entry that exists', () => {
    const r = load({ set: ['sources.events={generator: {rate: 5}}'] });
    expect(r.problems).toEqual([]);
    expect(r.value.sources!.events).toEqual({ generator: { rate: 5 } });
  });

  it('refuses a mistyped source name instead of adding a source, with a did-you-mean and no line of the file', () => {
    const r = load({ set: ['sources.evnets.kafka.topic=x'] });
    expect(r.problems).toEqual(['command line E_SET_PATH --set `sources.evnets.kafka.topic`: there is no source `evnets` (did you mean `events`?)']);
    expect(Object.keys(r.value.sources!)).toEqual(['events']);
  });

  it('refuses a new entry even when the whole entry is given', () => {
    const r = load({ set: ['sinks.more={from: events, file: {path: b.jsonl}}'] });
    expect(r.problems).toEqual(['command line E_SET_PATH --set `sinks.more`: there is no sink `more`']);
  });

  it('refuses a path below a key that does not exist', () => {
    const r = load({ set: ['sinks.out.fil.path=x'] });
    expect(r.problems).toEqual(['command line E_SET_PATH --set `sinks.out.fil.path`: `sinks.out.fil` does not exist (did you mean `file`?)']);
  });
});

describe('--add', () => {
  it('adds a sink', () => {
    const r = load({ add: ['sinks.copy={from: events, file: {path: copy.jsonl}}'] });
    expect(r.problems).toEqual([]);
    expect(r.valid?.entries.map((e) => e.name)).toEqual(['events', 'out', 'copy']);
  });

  it('adds a section the spec does not have, and a --set can refine what it added', () => {
    const r = load({ add: ['steps.kept={from: events, filter: "a > 1"}'], set: ['sinks.out.from=kept', 'steps.kept.filter=a > 2'] });
    expect(r.problems).toEqual([]);
    expect(r.value.steps).toEqual({ kept: { from: 'events', filter: 'a > 2' } });
  });

  it('refuses what exists, and a parent that does not', () => {
    expect(load({ add: ['sources.events={generator: {}}'] }).problems).toEqual(['command line E_SET_PATH --add `sources.events`: it exists already']);
    expect(load({ add: ['sources.evnts.kafka.group=g'] }).problems).toEqual(['command line E_SET_PATH --add `sources.evnts.kafka.group`: there is no source `evnts` (did you mean `events`?)']);
  });
});
