import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/engine/errors.ts';
import { buildRoutes } from '../../src/engine/router.ts';
import { RecordingSink, ScriptedSource, ScriptedStep, graphOf } from './fake-components.ts';

const source = () => new ScriptedSource('in', []);

describe('buildRoutes', () => {
  it('lists the readers of every port, in graph order', () => {
    const routes = buildRoutes(
      graphOf([
        { source: 'in', impl: source() },
        { step: 'w', impl: new ScriptedStep({ ports: ['late'] }), from: ['in'] },
        { sink: 'a', impl: new RecordingSink(), from: ['w', 'in.errors'] },
        { sink: 'b', impl: new RecordingSink(), from: ['w'] },
        { sink: 'l', impl: new RecordingSink(), from: ['w.late'] },
      ]),
    );
    const names = (node: string, port: string) => routes.readers.get(node)?.get(port)?.map((r) => r.name);
    expect(names('in', 'out')).toEqual(['w']);
    expect(names('in', 'errors')).toEqual(['a']);
    expect(names('w', 'out')).toEqual(['a', 'b']);
    expect(names('w', 'late')).toEqual(['l']);
    expect(names('w', 'errors')).toBeUndefined();
  });

  it.each([
    [[{ source: 'in', impl: source() }, { sink: 'in', impl: new RecordingSink(), from: ['in'] }], /appears twice/],
    [[{ source: 'in', impl: source() }, { sink: 'o', impl: new RecordingSink(), from: [] }], /reads nothing/],
    [[{ source: 'in', impl: source() }, { sink: 'o', impl: new RecordingSink(), from: ['in', 'in'] }], /twice/],
    [[{ source: 'in', impl: source() }, { sink: 'o', impl: new RecordingSink(), from: ['x'] }], /not a node/],
    [[{ source: 'in', impl: source() }, { sink: 'o', impl: new RecordingSink(), from: ['in.late'] }], /only the ports out, errors/],
  ] as const)('rejects a bad graph (%#)', (nodes, message) => {
    const build = () => buildRoutes(graphOf([...nodes] as Parameters<typeof graphOf>[0]));
    expect(build).toThrow(ConfigError);
    expect(build).toThrow(message);
  });
});
