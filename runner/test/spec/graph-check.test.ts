import { describe, expect, it } from 'vitest';
import { checkGraph, outputPorts, type GraphEntry } from '../../src/spec/graph-check.ts';

function entry(section: GraphEntry['section'], name: string, from: string[] = [], ports?: string[]): GraphEntry {
  return {
    section,
    name,
    path: [section, name],
    ports: section === 'sinks' ? [] : ports ?? outputPorts(),
    inputs: from.map((ref, i) => {
      const [node, port = 'out'] = ref.split('.');
      return { node: node!, port, path: [section, name, 'from', i] };
    }),
  };
}

const codes = (entries: GraphEntry[]) => checkGraph(entries).map((p) => `${p.code} ${p.path.join('.')}`);

describe('checkGraph', () => {
  it('accepts a connected graph', () => {
    expect(codes([entry('sources', 's'), entry('steps', 'a', ['s']), entry('sinks', 'k', ['a', 'a.errors', 's.errors'])])).toEqual([]);
  });

  it('puts extra ports after out and errors, without repeating them', () => {
    expect(outputPorts(['late', 'errors'])).toEqual(['out', 'errors', 'late']);
  });

  it('finds every cycle once, at the first step in spec order', () => {
    const entries = [
      entry('sources', 's'),
      entry('steps', 'a', ['s', 'c']),
      entry('steps', 'b', ['a']),
      entry('steps', 'c', ['b']),
      entry('steps', 'd', ['d']),
      entry('sinks', 'k', ['c', 'd']),
    ];
    expect(checkGraph(entries).map((p) => p.message)).toEqual([
      'steps read from each other in a cycle: `a` -> `b` -> `c` -> `a`',
      'step `d` reads from itself',
    ]);
  });

  it('accepts any port of a node whose kind is unknown, and skips reader checks when a `from` is unreadable', () => {
    expect(codes([entry('sources', 's'), { ...entry('steps', 'w', ['s']), ports: undefined }, entry('sinks', 'k', ['w', 'w.whatever'])])).toEqual([]);
    expect(codes([entry('sources', 's'), { ...entry('sinks', 'k'), inputs: undefined }])).toEqual([]);
  });

  it('reports unread sources and dangling steps only when nothing reads their main output', () => {
    expect(codes([entry('sources', 's'), entry('steps', 'a', ['s']), entry('sinks', 'k', ['s.errors', 'a.errors'])])).toEqual([
      'E_DANGLING_STEP steps.a',
    ]);
    expect(codes([entry('sources', 's'), entry('sources', 't'), entry('sinks', 'k', ['s'])])).toEqual(['E_UNREAD_SOURCE sources.t']);
  });

  it('counts a duplicate entry as a reader, so one duplicate is one error', () => {
    expect(codes([entry('sources', 's'), entry('steps', 'x', ['s']), entry('sinks', 'x', ['x'])])).toEqual(['E_DUPLICATE_NAME sinks.x']);
  });
});
