/**
 * Small component defs for spec tests that must not depend on the real components' evolving
 * schemas: one per shape the validator has to handle (kind config under the key, a step owning
 * sibling keys, extra ports, secrets, format options).
 */
import type { FormatDef, SinkDef, SourceDef, StepDef } from '../../src/engine/component.ts';
import { duration, expression, object, secret } from '../../src/engine/schema.ts';
import type { ComponentRegistry } from '../../src/spec/registry.ts';

const inert = {
  create(): never {
    throw new Error('fake component: not runnable');
  },
};

const kafkaSource: SourceDef<{ topic: string }> = {
  ...inert,
  family: 'source',
  name: 'kafka',
  summary: 'Reads a Kafka topic.',
  schema: object('Kafka consumer.', {
    brokers: { type: 'string', description: 'Bootstrap servers.', examples: ['localhost:9092'] },
    topic: { type: 'string', minLength: 1, description: 'Topic to read.', examples: ['events'] },
    start: { type: 'string', enum: ['earliest', 'latest'], default: 'latest', description: 'Where a new group starts.', examples: ['earliest'] },
    password: secret('SASL password.'),
  }, ['topic']),
  describe: (c) => `read topic ${c.topic}`,
};

const generatorSource: SourceDef<{ rate?: number }> = {
  ...inert,
  family: 'source',
  name: 'generator',
  summary: 'Generates records.',
  schema: object('Generator.', {
    rate: { type: 'integer', minimum: 1, description: 'Records per second.', examples: [10] },
    every: duration('Pause between batches.'),
  }),
  describe: (c) => `generate ${c.rate ?? 1}/s`,
};

const jsonFormat: FormatDef<unknown> = { ...inert, family: 'format', name: 'json', summary: 'JSON values.', schema: object('JSON.', {}), describe: () => 'json' };
const debeziumFormat: FormatDef<unknown> = {
  ...inert,
  family: 'format',
  name: 'debezium',
  summary: 'Debezium envelopes.',
  schema: object('Debezium.', { ops: { type: 'array', items: { type: 'string', enum: ['c', 'u', 'd', 'r'] }, description: 'Ops kept.', examples: [['c']] } }),
  describe: () => 'debezium',
};

const filterStep: StepDef<{ filter: string }> = {
  ...inert,
  family: 'step',
  name: 'filter',
  summary: 'Keeps matching records.',
  schema: object('Filter.', { filter: expression('Predicate.', ['a > 1']) }, ['filter']),
  describe: (c) => `keep records where ${c.filter}`,
};

const setStep: StepDef<{ set: Record<string, string> }> = {
  ...inert,
  family: 'step',
  name: 'set',
  summary: 'Computes fields.',
  schema: object('Set.', { set: { type: 'object', minProperties: 1, additionalProperties: expression('Value.', ['a + 1']), description: 'Fields.', examples: [{ a: 'b' }] } }, ['set']),
  describe: (c) => `set ${Object.keys(c.set).join(', ')}`,
};

const windowStep: StepDef<{ window: Record<string, unknown> }> = {
  ...inert,
  family: 'step',
  name: 'window',
  summary: 'Aggregates per window.',
  ports: ['late'],
  schema: object(
    'Window.',
    {
      window: object(
        'Window shape.',
        {
          tumbling: duration('Size.'),
          hopping: object('Hopping.', { size: duration('Size.'), advance: duration('Advance.') }, ['size', 'advance']),
          time: expression('Event time.', ['ts']),
          lateness: duration('Lateness.'),
          emit: { type: 'string', enum: ['final', 'update'], description: 'When.', examples: ['final'] },
        },
        [],
        { oneOf: [{ required: ['tumbling'] }, { required: ['hopping'] }] },
      ),
      group_by: {
        description: 'Keys.',
        oneOf: [
          { type: 'array', minItems: 1, items: { type: 'string', 'x-jsonata': true } },
          { type: 'object', additionalProperties: expression('Key.', ['a']) },
        ],
      },
      aggregate: { type: 'object', minProperties: 1, additionalProperties: expression('Aggregate.', ['$count()']), description: 'Aggregates.' },
    },
    ['window', 'aggregate'],
  ),
  describe: () => 'window',
};

const fileSink: SinkDef<{ path: string }> = {
  ...inert,
  family: 'sink',
  name: 'file',
  summary: 'Writes JSON lines.',
  schema: object('File.', { path: { type: 'string', minLength: 1, description: 'Path.', examples: ['out.jsonl'] } }, ['path']),
  describe: (c) => `write ${c.path}`,
};

const kafkaSink: SinkDef<{ topic: string; password?: string }> = {
  ...inert,
  family: 'sink',
  name: 'kafka',
  summary: 'Writes to Kafka.',
  schema: object('Kafka producer.', {
    topic: { type: 'string', description: 'Topic.', examples: ['t'] },
    key: expression('Key.', ['id']),
    password: secret('Password.'),
  }, ['topic']),
  describe: (c) => `write topic ${c.topic}${c.password ? ` as ${c.password}` : ''}`,
};

export const fakeComponents: ComponentRegistry = {
  sources: [kafkaSource, generatorSource],
  formats: [jsonFormat, debeziumFormat],
  steps: [filterStep, setStep, windowStep],
  sinks: [fileSink, kafkaSink],
};
