/**
 * Kafka Connect schemas as the JsonConverter writes them (`value.converter.schemas.enable=true`):
 * `{type, fields?, items?, optional, name?, version?, doc?, parameters?, default?, field?}`.
 * Debezium marks its encodings with `name` (the "logical type"), e.g. io.debezium.time.MicroTimestamp.
 */

export type ConnectType =
  | 'int8'
  | 'int16'
  | 'int32'
  | 'int64'
  | 'float'
  | 'double'
  | 'boolean'
  | 'string'
  | 'bytes'
  | 'array'
  | 'map'
  | 'struct';

export interface ConnectSchema {
  type: ConnectType;
  optional: boolean;
  name?: string;
  version?: number;
  doc?: string;
  parameters?: Record<string, string>;
  default?: unknown;
  /** The field name, when this schema describes a field of a struct. */
  field?: string;
  /** Struct fields, in order. */
  fields?: ConnectSchema[];
  /** Array element schema. */
  items?: ConnectSchema;
  /** Map key and value schemas. */
  keys?: ConnectSchema;
  values?: ConnectSchema;
}

const TYPES: ReadonlySet<string> = new Set([
  'int8',
  'int16',
  'int32',
  'int64',
  'float',
  'double',
  'boolean',
  'string',
  'bytes',
  'array',
  'map',
  'struct',
]);

/** Logical type names Debezium and Kafka Connect use, as constants so encoder and decoder agree. */
export const LOGICAL = {
  Timestamp: 'io.debezium.time.Timestamp',
  MicroTimestamp: 'io.debezium.time.MicroTimestamp',
  NanoTimestamp: 'io.debezium.time.NanoTimestamp',
  ZonedTimestamp: 'io.debezium.time.ZonedTimestamp',
  Date: 'io.debezium.time.Date',
  Time: 'io.debezium.time.Time',
  MicroTime: 'io.debezium.time.MicroTime',
  NanoTime: 'io.debezium.time.NanoTime',
  ZonedTime: 'io.debezium.time.ZonedTime',
  MicroDuration: 'io.debezium.time.MicroDuration',
  Interval: 'io.debezium.time.Interval',
  Year: 'io.debezium.time.Year',
  VariableScaleDecimal: 'io.debezium.data.VariableScaleDecimal',
  Json: 'io.debezium.data.Json',
  Uuid: 'io.debezium.data.Uuid',
  Enum: 'io.debezium.data.Enum',
  EnumSet: 'io.debezium.data.EnumSet',
  Xml: 'io.debezium.data.Xml',
  Bits: 'io.debezium.data.Bits',
  Decimal: 'org.apache.kafka.connect.data.Decimal',
  ConnectTimestamp: 'org.apache.kafka.connect.data.Timestamp',
  ConnectDate: 'org.apache.kafka.connect.data.Date',
  ConnectTime: 'org.apache.kafka.connect.data.Time',
} as const;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Reads an unknown value as a Connect schema, or explains why it is not one. Parsing (not casting)
 * once per distinct schema: the decoder caches the result.
 */
export function parseConnectSchema(value: unknown, path = 'schema'): ConnectSchema {
  if (!isRecord(value)) throw new Error(`${path} is not a Connect schema object`);
  const { type } = value;
  if (typeof type !== 'string' || !TYPES.has(type)) throw new Error(`${path}.type ${JSON.stringify(type)} is not a Connect type`);
  const schema: ConnectSchema = { type: type as ConnectType, optional: value.optional === true };
  if (typeof value.name === 'string') schema.name = value.name;
  if (typeof value.version === 'number') schema.version = value.version;
  if (typeof value.field === 'string') schema.field = value.field;
  if ('default' in value) schema.default = value.default;
  if (isRecord(value.parameters)) {
    const parameters: Record<string, string> = {};
    for (const [k, v] of Object.entries(value.parameters)) if (typeof v === 'string') parameters[k] = v;
    schema.parameters = parameters;
  }
  if (type === 'struct') {
    if (!Array.isArray(value.fields)) throw new Error(`${path}.fields is missing on a struct`);
    schema.fields = value.fields.map((f, i) => {
      const field = parseConnectSchema(f, `${path}.fields[${i}]`);
      if (field.field === undefined) throw new Error(`${path}.fields[${i}].field (the field name) is missing`);
      return field;
    });
  }
  if (type === 'array' && value.items !== undefined) schema.items = parseConnectSchema(value.items, `${path}.items`);
  if (type === 'map') {
    if (value.keys !== undefined) schema.keys = parseConnectSchema(value.keys, `${path}.keys`);
    if (value.values !== undefined) schema.values = parseConnectSchema(value.values, `${path}.values`);
  }
  return schema;
}

/** The struct field named `name`, if the schema is a struct that has it. */
export function fieldOf(schema: ConnectSchema | undefined, name: string): ConnectSchema | undefined {
  return schema?.fields?.find((f) => f.field === name);
}
