/**
 * kafkajs 2.2.4's record batch encoder for produce requests (format v2, KIP-98), replaced so that an
 * uncompressed batch is not copied on its way to the socket (client.ts imports this first).
 * kafkajs copies the records into the batch body, joins the body to checksum it, then copies the
 * batch into its partition's encoder. With encoder-buffers.ts alone that still made two of the
 * three copies of every byte: Buffer copies were 9.0% of the main thread while the native CDC
 * source wrote a backlog, and 2.3% with this. Here the records are referenced (encoder-buffers.ts
 * references an array of encoders that are large together), the CRC-32C runs over the body's
 * parts in turn, and the request frame's join, for the socket, is the one copy left. Same bytes
 * as kafkajs's own (the tests compare). A compressed batch is built as kafkajs builds it:
 * compression reads its records whole.
 *
 * RecordBatch => FirstOffset:int64 Length:int32 PartitionLeaderEpoch:int32 Magic:int8 CRC:uint32
 *   Attributes:int16 LastOffsetDelta:int32 FirstTimestamp:int64 MaxTimestamp:int64
 *   ProducerId:int64 ProducerEpoch:int16 FirstSequence:int32 Records:[Record]
 */
import { createRequire } from 'node:module';
import { crc32c } from './crc32c.ts';
import { bytesInParts } from './encoder-buffers.ts';
import { replaceKafkajsModule } from './kafkajs-module.ts';
// A record as kafkajs's produce request hands it over: record-encoding.ts's, or kafkajs's own Encoder.
import type { EncodedRecord } from './record-encoding.ts';

/** The part of kafkajs's Encoder this writes through. */
interface Encoder extends EncodedRecord {
  writeInt8(v: number): Encoder;
  writeInt16(v: number): Encoder;
  writeInt32(v: number): Encoder;
  writeUInt32(v: number): Encoder;
  /** A number or kafkajs's Long. */
  writeInt64(v: unknown): Encoder;
  writeBuffer(v: Buffer): Encoder;
  writeEncoderArray(v: readonly EncodedRecord[]): Encoder;
  writeEncoder(v: EncodedRecord): Encoder;
  size(): number;
}

/** What kafkajs's produce request passes. */
interface RecordBatchInput {
  compression?: number;
  firstOffset?: unknown;
  firstTimestamp?: unknown;
  maxTimestamp?: unknown;
  partitionLeaderEpoch?: number;
  lastOffsetDelta?: number;
  transactional?: boolean;
  producerId?: unknown;
  producerEpoch?: number;
  firstSequence?: number;
  records?: EncodedRecord[];
}

interface RecordBatchModule {
  RecordBatch(input: RecordBatchInput): Promise<Encoder>;
  MAGIC_BYTE: number;
}

interface CompressionModule {
  Types: { None: number };
  COMPRESSION_CODEC_MASK: number;
  lookupCodec(type: number): { compress(encoder: Encoder): Promise<Buffer> };
}

const require = createRequire(import.meta.url);
const EncoderClass = require('kafkajs/src/protocol/encoder.js') as new () => Encoder;
const Long = require('kafkajs/src/utils/long.js') as { fromInt(v: number): unknown; fromValue(v: number): unknown };
const compressionTypes = require('kafkajs/src/protocol/message/compression/index.js') as CompressionModule;

const MAGIC_BYTE = 2;
/** Attributes bit 4: the batch belongs to a transaction. */
const TRANSACTIONAL = 16;

async function recordBatch(input: RecordBatchInput): Promise<Encoder> {
  const { Types, COMPRESSION_CODEC_MASK, lookupCodec } = compressionTypes;
  const compression = input.compression ?? Types.None;
  const records = input.records ?? [];
  const now = Date.now();
  const body = new EncoderClass()
    .writeInt16((compression & COMPRESSION_CODEC_MASK) | (input.transactional === true ? TRANSACTIONAL : 0))
    .writeInt32(input.lastOffsetDelta ?? 0)
    .writeInt64(input.firstTimestamp ?? now)
    .writeInt64(input.maxTimestamp ?? now)
    .writeInt64(input.producerId ?? Long.fromValue(-1))
    .writeInt16(input.producerEpoch ?? 0)
    .writeInt32(input.firstSequence ?? 0);
  if (compression !== Types.None) {
    const recordsOnly = new EncoderClass().writeEncoderArray(records);
    body.writeInt32(records.length).writeBuffer(await lookupCodec(compression).compress(recordsOnly));
  } else body.writeInt32(records.length).writeEncoderArray(records); // referenced when together large (encoder-buffers.ts)

  let crc = 0;
  for (const part of bytesInParts(body)) crc = crc32c(part, crc);
  const batch = new EncoderClass().writeInt32(input.partitionLeaderEpoch ?? 0).writeInt8(MAGIC_BYTE).writeUInt32(crc).writeEncoder(body);
  return new EncoderClass()
    .writeInt64(input.firstOffset ?? Long.fromInt(0))
    .writeInt32(batch.size())
    .writeEncoder(batch);
}

/** kafkajs's own, kept for the tests to compare with. */
export const kafkajsRecordBatch = replaceKafkajsModule<RecordBatchModule>({
  module: 'kafkajs/src/protocol/recordBatch/v0/index.js',
  requiredBy: 'kafkajs/src/protocol/requests/produce/v3/request.js',
  replacement: { RecordBatch: recordBatch, MAGIC_BYTE },
  mark: Symbol.for('sluice.kafkajs.record-batch'),
  what: 'its record batch encoding',
});
