/** Debezium envelopes and Kafka Connect encodings: decoding for the `debezium` format, encoding for the generator and postgres-cdc. */
export * from './connect-schema.ts';
export * from './envelope.ts';
export * from './logical-types.ts';
export * from './decoder.ts';
export * from './encoder.ts';
