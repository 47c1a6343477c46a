import { describe, expect, it } from 'vitest';
import { renderComponentDocs, typeLabel } from '../../src/spec/docs.ts';
import { assemblePipelineSchema } from '../../src/spec/pipeline-schema.ts';
import { fakeComponents } from './fake-components.ts';

describe('typeLabel', () => {
  it('names types the way the reference shows them', () => {
    expect(typeLabel({ type: 'string', 'x-duration': true })).toBe('duration');
    expect(typeLabel({ type: 'string', 'x-jsonata': true })).toBe('JSONata');
    expect(typeLabel({ type: 'string', 'x-secret': true })).toBe('string (secret)');
    expect(typeLabel({ enum: ['a', 'b'] })).toBe('`a` | `b`');
    expect(typeLabel({ type: 'array', items: { type: 'string' } })).toBe('list of string');
    expect(typeLabel({ type: 'object', additionalProperties: { type: 'string', 'x-jsonata': true } })).toBe('map of JSONata');
    expect(typeLabel({ oneOf: [{ type: 'string' }, { type: 'array', items: { type: 'string' } }] })).toBe('string or list of string');
  });
});

describe('renderComponentDocs', () => {
  const docs = renderComponentDocs(fakeComponents);

  it('has a section per family and a table row per field, nested fields dotted, pipes escaped', () => {
    expect(docs).toContain('## Sources');
    expect(docs).toContain('### `kafka`\n\nReads a Kafka topic.\n\nWritten as `sources.<name>.kafka`.');
    expect(docs).toContain('| `kafka.start` | `earliest` \\| `latest` |  | `latest` | Where a new group starts. | `earliest` |');
    expect(docs).toContain('| `window.hopping.size` | duration | yes |  | Size. | `10s` |');
    expect(docs).toContain('Extra output ports: `late`.');
  });
});

describe('assemblePipelineSchema', () => {
  const schema = assemblePipelineSchema(fakeComponents) as { $defs: Record<string, Record<string, unknown>> };

  it('selects each step kind with if/then, accepting `from` next to the kind', () => {
    expect(schema.$defs.step!.allOf).toContainEqual({ if: { properties: { window: true }, required: ['window'] }, then: { $ref: '#/$defs/step-window' } });
    expect((schema.$defs['step-filter']!.properties as Record<string, unknown>).from).toEqual({ $ref: '#/$defs/from' });
  });

  it('puts every component schema in $defs', () => {
    expect(Object.keys(schema.$defs).sort()).toEqual(
      ['format', 'format-debezium', 'format-json', 'from', 'sink', 'sink-file', 'sink-kafka', 'source', 'source-generator', 'source-kafka', 'step', 'step-filter', 'step-set', 'step-window'].sort(),
    );
  });
});
