/**
 * The pipeline format as JSON Schema, assembled from the component defs: each source, step, sink
 * and format declares its config schema next to its code, and this file puts them together.
 *
 * Two products: `skeletonSchema()` checks the top level (the validator then checks each entry
 * against its own kind's schema, which gives precise messages), and `assemblePipelineSchema()` is
 * the published `schemas/pipeline.schema.json` editors use (kinds chosen with if/then).
 */
import type { JsonSchema } from '../engine/component.ts';
import { NODE_NAME_PATTERN, PIPELINE_NAME_PATTERN, PORT_REF_PATTERN, type ComponentRegistry } from './registry.ts';

export const SCHEMA_DIALECT = 'https://json-schema.org/draft/2020-12/schema';

export const fromSchema: JsonSchema = {
  description:
    'What this node reads: a source or step name, or `node.port` for a port other than the main output (`hourly.late`, `inserts.errors`). A list reads several inputs.',
  oneOf: [
    { type: 'string', pattern: PORT_REF_PATTERN },
    { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: PORT_REF_PATTERN } },
  ],
  examples: ['activities', 'hourly.late', ['inserts', 'updates']],
};

const deliverySchema: JsonSchema = {
  type: 'string',
  enum: ['at-least-once', 'exactly-once'],
  default: 'at-least-once',
  description:
    '`at-least-once`: after a crash, outputs of at most one checkpoint interval are written again; windows are restored, so a partial window is never emitted. `exactly-once`: Kafka sinks write in one transaction per checkpoint together with the state changelog and the consumed offsets (readers must use read_committed), and `postgres` sinks write their rows in one database transaction per checkpoint with the state and the source positions. Needs the `kafka` state store when it writes to Kafka and the `postgres` store when it writes to PostgreSQL; one pipeline cannot do both exactly-once (two commit points cannot be atomic).',
  examples: ['exactly-once'],
};

const checkpointSchema: JsonSchema = {
  type: 'object',
  additionalProperties: false,
  description:
    'Durable state. Every `interval`, and on a graceful stop, sluice takes a checkpoint between two batches: the outputs so far are written (or join the transaction), every window\'s state and the source positions it covers become durable together. A restart restores them.',
  properties: {
    interval: {
      type: 'string',
      pattern: '^[0-9]+(ms|s|m|h|d)$',
      default: '1s',
      description:
        'How often a checkpoint is taken. Outputs of an `exactly-once` pipeline become visible to read_committed readers once per interval, and an `at-least-once` restart re-writes at most this much output; 1s keeps both small while the cost stays a few ms per checkpoint.',
      examples: ['1s', '5s'],
    },
    store: {
      type: 'string',
      enum: ['kafka', 'file', 'postgres', 'none'],
      description:
        'Where state is kept. `kafka` (the default when a source reads Kafka): a compacted changelog topic per stateful step, `<application id>-<step>-changelog`, and a checkpoint topic `<application id>-checkpoint`, written in one Kafka transaction per checkpoint with the consumed offsets. `postgres` (the default under `delivery: exactly-once` when the pipeline writes to a `postgres` sink and to no `kafka` sink): tables `sluice_checkpoints` (one row per application id: positions, step headers, owner epoch) and `sluice_state` (one row per window pane, written as a delta) in the database of the first postgres sink (else of the postgres-cdc source), committed in the same transaction as the sink rows; a newer instance fences an older one. `file` (the default otherwise): one atomically replaced file under `dir`. `none`: no checkpoints (a restart starts windows empty, as before sluice had state).',
      examples: ['kafka', 'file', 'postgres'],
    },
    application_id: {
      type: 'string',
      pattern: '^[A-Za-z0-9._-]+$',
      description: 'Names the state: changelog topics, transactional ids and the state directory. Default: the pipeline name.',
      examples: ['employee-activity'],
    },
    dir: {
      type: 'string',
      minLength: 1,
      description: 'The `file` store\'s directory. Default `.sluice/state/<application id>` under the working directory; `--state-dir` overrides it.',
      examples: ['/var/lib/sluice/employee-activity'],
    },
    schema: {
      type: 'string',
      pattern: '^[A-Za-z_][A-Za-z0-9_$]*$',
      default: 'public',
      description: 'The `postgres` store\'s schema: where `sluice_checkpoints` and `sluice_state` are created when missing.',
      examples: ['public', 'sluice'],
    },
  },
  examples: [{ interval: '1s', store: 'kafka' }],
};

interface SectionSchemas {
  sources: JsonSchema;
  steps: JsonSchema;
  sinks: JsonSchema;
}

function section(description: string, entry: JsonSchema, minProperties?: number): JsonSchema {
  return {
    type: 'object',
    description,
    propertyNames: { pattern: NODE_NAME_PATTERN },
    additionalProperties: entry,
    ...(minProperties ? { minProperties } : {}),
  };
}

function pipelineObject(entries: SectionSchemas): JsonSchema {
  const sections = {
    sources: section('Named inputs. Each has exactly one kind key and an optional `format`.', entries.sources, 1),
    steps: section('Named processing steps. Each reads `from` sources or steps and has exactly one kind key.', entries.steps),
    sinks: section('Named outputs. Each reads `from` sources or steps and has exactly one kind key.', entries.sinks, 1),
  };
  return {
    type: 'object',
    required: ['version', 'name', 'sources', 'sinks'],
    additionalProperties: false,
    properties: {
      version: { const: 1, description: 'The spec format version. Always 1.', examples: [1] },
      name: {
        type: 'string',
        pattern: PIPELINE_NAME_PATTERN,
        description: 'The pipeline name: lowercase letters, digits and `-`. Used in logs, metrics and consumer group defaults.',
        examples: ['employee-activity'],
      },
      description: { type: 'string', description: 'What the pipeline does, in a sentence or two.', examples: ['Enrich web activity and summarise it per hour.'] },
      delivery: deliverySchema,
      checkpoint: checkpointSchema,
      ...sections,
      profiles: {
        type: 'object',
        description: 'Named overrides, chosen with `--profile NAME`: their sources, steps and sinks replace or add whole entries.',
        propertyNames: { pattern: NODE_NAME_PATTERN },
        additionalProperties: {
          type: 'object',
          additionalProperties: false,
          properties: {
            description: { type: 'string', description: 'What the profile is for.' },
            ...sections,
          },
        },
      },
    },
  };
}

/** The top level only: entries are maps, checked one by one against their kind afterwards. */
export function skeletonSchema(): JsonSchema {
  const entry = { type: 'object' };
  return pipelineObject({ sources: entry, steps: entry, sinks: entry });
}

const ref = (name: string) => ({ $ref: `#/$defs/${name}` });
/** "has key `name`", in a form ajv's strict mode accepts (a required key must be declared alongside). */
const requires = (name: string) => ({ properties: { [name]: true }, required: [name] });

/** The published schema: every component's config in `$defs`, selected per entry by its kind key. */
export function assemblePipelineSchema(registry: ComponentRegistry): JsonSchema {
  const defs: Record<string, JsonSchema> = { from: fromSchema };
  const kindChoice = (family: string, names: string[]) => ({
    // Exactly one kind key: editors then complete the kinds and flag a second one.
    ...(names.length ? { oneOf: names.map(requires) } : {}),
    ...(names.length ? { allOf: names.map((n) => ({ if: requires(n), then: ref(`${family}-${n}`) })) } : {}),
  });

  for (const f of registry.formats) defs[`format-${f.name}`] = withSummary(f.schema, f.summary);
  const formatNames = registry.formats.map((f) => f.name);
  defs.format = {
    description: 'How message bytes become records: a format name, or `{ <format>: <options> }`. Default: `json`.',
    anyOf: [
      { type: 'string', enum: formatNames.length ? formatNames : ['json'] },
      {
        type: 'object',
        minProperties: 1,
        maxProperties: 1,
        properties: Object.fromEntries(formatNames.map((n) => [n, ref(`format-${n}`)])),
        additionalProperties: false,
      },
    ],
    examples: ['json', 'debezium'],
  };

  for (const s of registry.sources) defs[`source-${s.name}`] = withSummary(s.schema, s.summary);
  defs.source = {
    type: 'object',
    description: 'A source: one kind key with its config, and an optional `format`.',
    properties: { format: ref('format'), ...Object.fromEntries(registry.sources.map((s) => [s.name, ref(`source-${s.name}`)])) },
    additionalProperties: false,
    ...(registry.sources.length ? { oneOf: registry.sources.map((s) => requires(s.name)) } : {}),
  };

  for (const s of registry.steps) {
    // A step's schema describes the entry without `from`; the published one accepts `from` too.
    const props = (s.schema.properties as Record<string, unknown> | undefined) ?? {};
    defs[`step-${s.name}`] = withSummary({ ...s.schema, properties: { from: ref('from'), ...props } }, s.summary);
  }
  defs.step = {
    type: 'object',
    description: 'A step: `from` and one kind key (with the sibling keys that kind owns).',
    required: ['from'],
    properties: { from: ref('from') },
    ...kindChoice('step', registry.steps.map((s) => s.name)),
  };

  for (const s of registry.sinks) defs[`sink-${s.name}`] = withSummary(s.schema, s.summary);
  defs.sink = {
    type: 'object',
    description: 'A sink: `from` and one kind key with its config.',
    required: ['from'],
    properties: { from: ref('from'), ...Object.fromEntries(registry.sinks.map((s) => [s.name, ref(`sink-${s.name}`)])) },
    additionalProperties: false,
    ...(registry.sinks.length ? { oneOf: registry.sinks.map((s) => requires(s.name)) } : {}),
  };

  return {
    $schema: SCHEMA_DIALECT,
    $id: 'https://github.com/sluice/sluice/schemas/pipeline.schema.json',
    title: 'sluice pipeline',
    description: 'One YAML file per pipeline: named sources, steps and sinks wired by `from`. Generated by `npm run schema`; do not edit.',
    ...pipelineObject({ sources: ref('source'), steps: ref('step'), sinks: ref('sink') }),
    $defs: defs,
  };
}

function withSummary(schema: JsonSchema, summary: string): JsonSchema {
  return schema.description === undefined ? { ...schema, description: summary } : schema;
}
