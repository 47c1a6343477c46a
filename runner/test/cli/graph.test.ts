import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { command as graph } from '../../src/cli/graph.ts';
import { captureIO } from './cli-io.ts';

const SPEC = `version: 1
name: cli-graph
sources:
  events:
    kafka: { brokers: localhost:9092, topic: t, group: g, sasl: { mechanism: plain, username: u, password: "\${PW:-hunter2}" } }
steps:
  kept:
    from: events
    filter: a > 1
sinks:
  out:
    from: [kept, kept.errors]
    kafka: { brokers: localhost:9092, topic: o }
`;

function specFile(text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sluice-graph-')), 'g.yaml');
  writeFileSync(file, text);
  return file;
}

describe('sluice graph', () => {
  const file = specFile(SPEC);

  it('prints the text form by default, with no secret in it', async () => {
    const io = captureIO();
    expect(await graph.run([file], io)).toBe(0);
    const out = io.out();
    expect(out).toMatch(/^pipeline cli-graph\n/);
    expect(out).toContain('  kept [filter]  <- events\n');
    expect(out).toContain('  out [kafka]  <- kept, kept.errors\n');
    expect(out).not.toContain('hunter2');
  });

  it('prints mermaid and dot', async () => {
    const mermaid = captureIO();
    expect(await graph.run([file, '--format', 'mermaid'], mermaid)).toBe(0);
    expect(mermaid.out()).toMatch(/^flowchart LR\n/);
    expect(mermaid.out()).toContain('  n1 -. errors .-> n2');
    const dot = captureIO();
    expect(await graph.run([file, '--format=dot'], dot)).toBe(0);
    expect(dot.out()).toMatch(/^digraph "cli-graph" \{/);
  });

  it('exits 2 with diagnostics for an invalid spec', async () => {
    const io = captureIO();
    expect(await graph.run([specFile(SPEC.replace('from: events', 'from: event'))], io)).toBe(2);
    expect(io.out()).toBe('');
    expect(io.err()).toContain('error[E_FROM_UNKNOWN]: step `kept` reads from `event`, which is not a source or step (did you mean `events`?)');
  });
});
