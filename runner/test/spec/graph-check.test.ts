import { describe, expect, it } from 'vitest';
import { checkGraph, outputPorts, SINK_PORTS, type GraphEntry } from '../../src/spec/graph-check.ts';

function entry(section: GraphEntry['section'], name: string, from: string[] = [], ports?: string[]): GraphEntry {
  return {
    section,
    name,
    path: [section, name],
    ports: section === 'sinks' ? SINK_PORTS : ports ?? outputPorts(),
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

  it("lets a sink read another sink's errors, and only a sink", () => {
    const base = [entry('sources', 's'), entry('sinks', 'db', ['s'])];
    expect(codes([...base, entry('sinks', 'dlq', ['db.errors', 's.errors'])])).toEqual([]);
    expect(checkGraph([...base, entry('steps', 'a', ['db.errors']), entry('sinks', 'k', ['a'])]).map((p) => `${p.code} ${p.message}`)).toEqual([
      "E_FROM_UNKNOWN step `a` reads `db.errors`: only a sink can read a sink's errors",
    ]);
    expect(checkGraph([...base, entry('sinks', 'k', ['db'])]).map((p) => `${p.code} ${p.message}`)).toEqual([
      "E_FROM_UNKNOWN sink `k` reads from `db`, which is a sink; a sink's only output is `db.errors`, the records it could not write",
    ]);
    expect(codes([...base, entry('sinks', 'k', ['db.late'])])).toEqual(['E_PORT_UNKNOWN sinks.k.from.0']);
  });

  it('finds sinks reading their own or each other\'s errors in a cycle', () => {
    const entries = [entry('sources', 's'), entry('sinks', 'a', ['s', 'b.errors']), entry('sinks', 'b', ['a.errors']), entry('sinks', 'c', ['s', 'c.errors'])];
    expect(checkGraph(entries).map((p) => `${p.code} ${p.path.join('.')} ${p.message}`)).toEqual([
      "E_CYCLE sinks.a.from.1 sinks read each other's errors in a cycle: `a` -> `b` -> `a`",
      'E_CYCLE sinks.c.from.1 sink `c` reads its own errors',
    ]);
  });

  it('counts a duplicate entry as a reader, so one duplicate is one error', () => {
    expect(codes([entry('sources', 's'), entry('steps', 'x', ['s']), entry('sinks', 'x', ['x'])])).toEqual(['E_DUPLICATE_NAME sinks.x']);
  });
});
