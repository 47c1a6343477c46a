/**
 * Debezium envelopes and Kafka Connect encodings, decoded for the `debezium` format. Change events
 * are encoded in io/postgres/change-events.ts (postgres-cdc and the generator).
 */
export * from './connect-schema.ts';
export * from './envelope.ts';
export * from './logical-types.ts';
export * from './decoder.ts';
