/**
 * What a record looks like on an `errors` port. Kafka Connect's dead-letter convention: the value
 * stays as it was (raw text for a message that could not be decoded), so it can be replayed, and
 * the reason travels alongside it, in headers (for sinks that write headers) and in `$meta.error`
 * (for steps: `set: { reason: $meta.error.message }`).
 */
import { isUtf8 } from 'node:buffer';
import type { Ack } from './ack.ts';
import { SluiceError, boundedMessage, errorMessage } from './errors.ts';
import { RefusedValue, type RawMessage, type StreamRecord } from './record.ts';

export const ERROR_NODE_HEADER = 'sluice-error-node';
export const ERROR_MESSAGE_HEADER = 'sluice-error-message';

/** `$meta.error` of a record on an errors port. */
export interface RecordFailure {
  /** The node that failed: the source that could not decode, or the step that could not process. */
  node: string;
  message: string;
  /** The SluiceError code, when the error had one (`E_DECODE`, `E_EXPR_EVAL` ...). */
  code?: string;
}

/** The failure as records carry it; the message cut to MAX_ERROR_MESSAGE_LENGTH, whatever threw it. */
export function describeFailure(node: string, error: unknown): RecordFailure {
  const failure: RecordFailure = { node, message: boundedMessage(errorMessage(error)) };
  if (error instanceof SluiceError) failure.code = error.code;
  return failure;
}

/** A record a step failed on, as its `<step>.errors` port carries it. Keeps the record's Ack. */
export function failedRecord(rec: StreamRecord, node: string, error: unknown): StreamRecord {
  const failure = describeFailure(node, error);
  return {
    key: rec.key,
    value: rec.value,
    time: rec.time,
    headers: { ...rec.headers, [ERROR_NODE_HEADER]: node, [ERROR_MESSAGE_HEADER]: failure.message },
    meta: { ...rec.meta, error: failure },
    position: rec.position,
    ack: rec.ack,
  };
}

/**
 * Bytes become UTF-8 text, so JSON sinks write them and expressions read them, when they are valid
 * UTF-8 (the text then encodes back to the same bytes); other bytes stay bytes, which a raw sink
 * writes as they came (`value_format: raw`) and a JSON sink as `{"type":"Buffer","data":[...]}`,
 * either way without loss. A refused value (never read whole) is null; anything else stays.
 */
function rawText(v: unknown): unknown {
  if (v instanceof RefusedValue) return null;
  if (Buffer.isBuffer(v)) return isUtf8(v) ? v.toString('utf8') : v;
  return v;
}

/** A message its source's format could not decode, as `<source>.errors` carries it. */
export function undecodableRecord(msg: RawMessage, source: string, ack: Ack, error: unknown): StreamRecord {
  const failure = describeFailure(source, error);
  return {
    key: rawText(msg.key),
    value: rawText(msg.value),
    time: msg.timestamp,
    headers: { ...msg.headers, [ERROR_NODE_HEADER]: source, [ERROR_MESSAGE_HEADER]: failure.message },
    meta: { error: failure },
    position: msg.position,
    ack,
  };
}
