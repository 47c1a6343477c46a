/**
 * The yardstick of `npm run bench:kafka`: what the employee job's stateless half costs with kafkajs
 * alone and no sluice. A consumer group reads the Debezium topic, parses each event with
 * JSON.parse, keeps the inserts, adds the four enrichment fields in plain JS and produces the rows
 * (gzip, in chunks, acks=all), with their headers, committing each batch's offsets once its output
 * is acknowledged. It computes no hourly summaries and checks nothing: the most a pipeline over
 * this client could hope for, on the same topic, machine and run as sluice.
 *
 * With `summaries` it does the whole job: it also sums each insert into its hour in memory
 * (hourly-summaries.ts) and writes the hours the watermark closed after each batch, as the
 * pipeline's `hourly` window and summaries sink do, but with no repartition topic and no state
 * kept anywhere: an equal-work yardstick, for comparison only.
 */
// Loaded first, as everywhere: it installs the read_committed fix before kafkajs loads.
import '../src/io/kafka/client.ts';
import { CompressionTypes, Kafka, logLevel, type Message, type Producer } from 'kafkajs';
import { HourlySummaries, type ChangePayload } from './hourly-summaries.ts';

/** What the pass-through measured: from its first fetched batch to its last acknowledged send. */
export interface PassThroughResult {
  messages: number;
  written: number;
  seconds: number;
  /** With `summaries`: the closed hours written, and the inserts that came after their hour was. */
  summaries?: { written: number; late: number };
}

/** Where the equal-work pass-through writes its hourly summaries, and how many partitions its input has. */
export interface SummariesOutput {
  topic: string;
  partitions: number;
}

interface DebeziumInsert {
  payload?: ChangePayload;
}

/** One event's enriched row, as the pipeline's `enriched` step makes it; undefined for anything but an insert. */
function enrich(payload: ChangePayload): Record<string, unknown> | undefined {
  if (payload?.op !== 'c' || !payload.after) return undefined;
  const row = payload.after;
  const micros = row.activity_timestamp;
  if (typeof micros !== 'number') return undefined;
  const at = new Date(Math.floor(micros / 1000));
  const iso = at.toISOString();
  const hour = at.getUTCHours();
  const duration = row.duration_seconds;
  return {
    ...row,
    activity_timestamp: iso,
    activity_hour: hour,
    activity_date: iso.slice(0, 10),
    session_duration_category: typeof duration !== 'number' ? null : duration < 30 ? 'short' : duration < 300 ? 'medium' : 'long',
    is_business_hours: hour >= 9 && hour <= 17,
  };
}

/**
 * The pass-through's fetch per partition, by default 10 MiB: its fastest on a 200,000-event backlog
 * (10-14% above 1 MiB, measured). On 1,000,000 gzip'd events it made no progress for minutes at
 * 3 GB resident, with every partition's 10 MiB fetch decompressed at once; at 1 MiB it drains them.
 */
export const PASS_THROUGH_FETCH_BYTES = 10_485_760;

/** Drains `messages` events of `input` into `output` in a group of its own. */
export async function passThrough(
  brokers: string[],
  input: string,
  output: string,
  messages: number,
  group: string,
  fetchBytes = PASS_THROUGH_FETCH_BYTES,
  summariesOutput?: SummariesOutput,
): Promise<PassThroughResult> {
  const kafka = new Kafka({ clientId: 'bench-pass-through', brokers, logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const consumer = kafka.consumer({ groupId: group, maxBytesPerPartition: fetchBytes, maxBytes: Math.max(52_428_800, fetchBytes) });
  await producer.connect();
  await consumer.connect();
  await consumer.subscribe({ topics: [input], fromBeginning: true });
  let read = 0;
  let written = 0;
  const summaries = summariesOutput ? new HourlySummaries(summariesOutput.partitions) : undefined;
  let summariesWritten = 0;
  let firstAt: number | undefined;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  await consumer.run({
    autoCommit: false,
    partitionsConsumedConcurrently: 6,
    eachBatch: async ({ batch }) => {
      firstAt ??= performance.now();
      const out: Message[] = [];
      for (const m of batch.messages) {
        if (m.value === null) continue;
        const payload = (JSON.parse(m.value.toString('utf8')) as DebeziumInsert).payload;
        summaries?.event(batch.partition, payload);
        const row = enrich(payload);
        // Headers pass through, as sluice's kafka sink passes them (the latency bench's produce time).
        if (row) out.push({ key: String(row.employee_id), value: JSON.stringify(row), headers: m.headers });
      }
      // Chunked: one kafkajs send of tens of thousands of messages is superlinear in its size.
      for (let i = 0; i < out.length; i += 2_000) {
        await producer.send({ topic: output, acks: -1, compression: CompressionTypes.GZIP, messages: out.slice(i, i + 2_000) });
      }
      written += out.length;
      if (summaries && summariesOutput) summariesWritten += await sendSummaries(producer, summariesOutput.topic, summaries);
      read += batch.messages.length;
      await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: (BigInt(batch.lastOffset()) + 1n).toString() }]);
      if (read >= messages) finish();
    },
  });
  await done;
  const seconds = (performance.now() - (firstAt ?? performance.now())) / 1000;
  await consumer.disconnect();
  await producer.disconnect();
  return { messages: read, written, seconds, ...(summaries ? { summaries: { written: summariesWritten, late: summaries.late } } : {}) };
}

/** Writes the hours closed so far, as the pipeline's summaries sink does (keyed by employee, gzip); returns how many. */
async function sendSummaries(producer: Producer, topic: string, summaries: HourlySummaries): Promise<number> {
  const closed = summaries.closed();
  for (let i = 0; i < closed.length; i += 2_000) {
    const messages = closed.slice(i, i + 2_000).map((s) => ({ key: String(s.employee_id), value: JSON.stringify(s) }));
    await producer.send({ topic, acks: -1, compression: CompressionTypes.GZIP, messages });
  }
  return closed.length;
}
