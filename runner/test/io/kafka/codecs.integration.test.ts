/**
 * The codecs against the real thing: the Java console producer (the Java client Kafka Connect and
 * Debezium use) writes gzip, snappy, lz4 and zstd, and sluice's consumer reads every message back;
 * sluice's producer writes gzip, snappy and lz4, and the Java client's KafkaConsumer reads every
 * message (the broker's jars have no console consumer: kafka-tools is not among them).
 * Where the broker's data directory is this machine's (scripts/kafka.sh), DumpLogSegments shows
 * that each batch was stored with the codec it was written with.
 */
// client.ts first (through test-broker.ts): it must fix kafkajs before anything loads kafkajs.
import { openAdmin, testBrokers, testConnection, uniqueName, waitFor } from './test-broker.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/engine/logger.ts';
import { createGroupConsumer, createProducer, type Compression, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { lz4Codec, snappyCodec, zstdCodec } from '../../../src/io/kafka/codecs.ts';

/** Where scripts/kafka.sh keeps Kafka: its jars, and the local broker's data. */
const KAFKA_HOME = path.join(process.env.SLUICE_CACHE ?? path.join(homedir(), '.cache/sluice'), 'kafka-3.9.1');
const LIBS = path.join(KAFKA_HOME, 'libs');
const DATA_DIR = path.join(KAFKA_HOME, 'run/data');

/** Per codec and direction: several batches per partition of more than 64 KiB each (multi-block lz4, multi-chunk xerial). */
const MESSAGES = 3000;
const PARTITIONS = 2;
const ACTIVITIES = ['login', 'logout', 'file_access'];

/**
 * Java's own consumer, run from source (java's single-file launcher): reads the given topics from
 * the beginning, all partitions, without a group, and prints `topic TAB key TAB value` lines.
 * Exits 2 when fewer than the expected messages per topic arrived in 30 s.
 */
const JAVA_READER = `
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.common.*;
import org.apache.kafka.common.serialization.StringDeserializer;

public class ReadTopics {
  public static void main(String[] args) {
    String brokers = args[0];
    int expected = Integer.parseInt(args[1]) * (args.length - 2);
    Properties props = new Properties();
    props.put("bootstrap.servers", brokers);
    props.put("key.deserializer", StringDeserializer.class.getName());
    props.put("value.deserializer", StringDeserializer.class.getName());
    props.put("enable.auto.commit", "false");
    try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(props)) {
      List<TopicPartition> partitions = new ArrayList<>();
      for (int t = 2; t < args.length; t++) {
        for (PartitionInfo p : consumer.partitionsFor(args[t])) partitions.add(new TopicPartition(p.topic(), p.partition()));
      }
      consumer.assign(partitions);
      consumer.seekToBeginning(partitions);
      StringBuilder out = new StringBuilder();
      int count = 0;
      long deadline = System.currentTimeMillis() + 30_000;
      while (count < expected && System.currentTimeMillis() < deadline) {
        for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
          out.append(r.topic()).append('\\t').append(r.key()).append('\\t').append(r.value()).append('\\n');
          count++;
        }
      }
      System.out.print(out);
      System.out.flush();
      if (count < expected) {
        System.err.println("read " + count + " of " + expected + " messages");
        System.exit(2);
      }
    }
  }
}
`;

interface KeyedValue {
  key: string;
  value: string;
}

function messagesFor(codec: string): KeyedValue[] {
  return Array.from({ length: MESSAGES }, (_, i) => ({
    key: `k${i % 10}`,
    value: JSON.stringify({ i, codec, text: `employee ${i % 37} did ${ACTIVITIES[i % 3]} at 08:${String(i % 60).padStart(2, '0')}`, pad: 'x'.repeat(i % 50) }),
  }));
}

/** Every message arrived once, with its key, and in order within each key (one key, one partition). */
function expectAllMessages(got: readonly KeyedValue[], expected: readonly KeyedValue[]): void {
  expect(got).toHaveLength(expected.length);
  const byKey = (list: readonly KeyedValue[]) => {
    const out = new Map<string, string[]>();
    for (const m of list) {
      const values = out.get(m.key);
      if (values) values.push(m.value);
      else out.set(m.key, [m.value]);
    }
    return out;
  };
  const gotByKey = byKey(got);
  for (const [key, values] of byKey(expected)) expect(gotByKey.get(key), `values of key ${key}`).toEqual(values);
}

describe('compression codecs against the Java client', () => {
  let admin: KafkaAdmin;
  let workDir: string;
  let log4jConfig: string;
  const running = new Set<ChildProcess>();
  const topics: string[] = [];

  beforeAll(async () => {
    if (!existsSync(LIBS)) throw new Error(`no Kafka jars in ${LIBS}: run scripts/kafka.sh start once (it fetches them), or set SLUICE_CACHE`);
    workDir = mkdtempSync(path.join(tmpdir(), 'sluice-codecs-'));
    // The tools' logs go to stderr: the console consumer's stdout carries only messages.
    log4jConfig = path.join(workDir, 'log4j.properties');
    writeFileSync(
      log4jConfig,
      [
        'log4j.rootLogger=WARN, stderr',
        'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
        'log4j.appender.stderr.Target=System.err',
        'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
        'log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n',
      ].join('\n'),
    );
    admin = await openAdmin();
  });

  afterAll(async () => {
    for (const child of running) killGroup(child);
    if (topics.length > 0) await admin.deleteTopics(topics).catch(() => {});
    await admin?.close();
    if (workDir) rmSync(workDir, { recursive: true, force: true });
  });

  function killGroup(child: ChildProcess): void {
    if (child.pid === undefined) return;
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }

  /**
   * Runs a Kafka tool's main class (or a single-file Java source) with Kafka's jars, in a JVM of its
   * own process group (killed whole on timeout); resolves with its stdout once it exits 0.
   */
  function runJava(mainClass: string, args: readonly string[], stdin = '', timeoutMs = 45_000): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        'java',
        ['-Xmx256m', '-XX:+UseSerialGC', '-XX:TieredStopAtLevel=1', '-cp', `${LIBS}/*`, `-Dlog4j.configuration=file:${log4jConfig}`, mainClass, ...args],
        { detached: true, stdio: ['pipe', 'pipe', 'pipe'] },
      );
      running.add(child);
      let stdout = '';
      let stderr = '';
      child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
      child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
      const timer = setTimeout(() => {
        killGroup(child);
        reject(new Error(`${mainClass} did not finish in ${timeoutMs} ms; stderr:\n${stderr}`));
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        running.delete(child);
        reject(err);
      });
      child.on('exit', (code, signal) => {
        clearTimeout(timer);
        running.delete(child);
        if (code === 0) resolve(stdout);
        else reject(new Error(`${mainClass} exited with ${code ?? signal}; stderr:\n${stderr}`));
      });
      child.stdin.end(stdin);
    });
  }

  async function createTopics(prefix: string, codecs: readonly string[]): Promise<Map<string, string>> {
    const byCodec = new Map(codecs.map((codec) => [codec, uniqueName(`${prefix}-${codec}`)]));
    await admin.createTopics([...byCodec.values()].map((topic) => ({ topic, partitions: PARTITIONS, configs: { 'retention.ms': '-1' } })));
    topics.push(...byCodec.values());
    return byCodec;
  }

  /**
   * The codecs of the batches the broker stored, per topic, when its data directory is this
   * machine's (a unique topic name found there is this broker's); undefined otherwise.
   */
  async function storedCodecs(topicNames: readonly string[]): Promise<Map<string, Set<string>> | undefined> {
    const segments = topicNames.flatMap((topic) =>
      Array.from({ length: PARTITIONS }, (_, p) => path.join(DATA_DIR, `${topic}-${p}`, '00000000000000000000.log')),
    );
    if (!segments.every((file) => existsSync(file))) return undefined;
    const dump = await runJava('kafka.tools.DumpLogSegments', ['--files', segments.join(',')]);
    const codecs = new Map<string, Set<string>>(topicNames.map((topic) => [topic, new Set()]));
    let current: Set<string> | undefined;
    for (const line of dump.split('\n')) {
      const file = /^Dumping (.+)$/.exec(line)?.[1];
      if (file) current = codecs.get(path.basename(path.dirname(file)).replace(/-\d+$/, ''));
      const codec = /compresscodec: (\w+)/.exec(line)?.[1];
      if (codec) current?.add(codec);
    }
    return codecs;
  }

  it('reads every message the Java producer wrote with gzip, snappy, lz4 and zstd', async () => {
    const codecs = ['gzip', 'snappy', 'lz4', 'zstd'] as const;
    const byCodec = await createTopics('codecs-from-java', codecs);
    // Large batches, so that Java's lz4 frames have several 64 KiB blocks and its snappy streams several 32 KiB chunks.
    await Promise.all(
      codecs.map((codec) =>
        runJava(
          'kafka.tools.ConsoleProducer',
          ['--bootstrap-server', testBrokers().join(','), '--topic', byCodec.get(codec)!, '--compression-codec', codec, '--property', 'parse.key=true', '--batch-size', '262144', '--timeout', '200'],
          messagesFor(codec).map((m) => `${m.key}\t${m.value}\n`).join(''),
        ),
      ),
    );

    const decompressed = { snappy: vi.spyOn(snappyCodec, 'decompress'), lz4: vi.spyOn(lz4Codec, 'decompress'), zstd: vi.spyOn(zstdCodec, 'decompress') };
    const received = new Map<string, KeyedValue[]>(codecs.map((codec) => [byCodec.get(codec)!, []]));
    let total = 0;
    const consumer = createGroupConsumer(testConnection(), { groupId: uniqueName('codecs-g'), topics: [...byCodec.values()], fromBeginning: true, concurrency: 4 }, silentLogger);
    try {
      await consumer.start({
        onBatch: async (batch) => {
          for (const m of batch.messages) received.get(batch.topic)!.push({ key: m.key!.toString(), value: m.value!.toString() });
          total += batch.messages.length;
        },
        onRebalancing: () => {},
        onAssignment: () => {},
        onCrash: () => {},
      });
      await waitFor(`${codecs.length * MESSAGES} messages`, () => total >= codecs.length * MESSAGES, 40_000);
    } finally {
      await consumer.disconnect();
    }
    // Read before mockRestore, which forgets the calls.
    const decompressions = Object.entries(decompressed).map(([codec, spy]) => [codec, spy.mock.calls.length] as const);
    for (const spy of Object.values(decompressed)) spy.mockRestore();

    for (const codec of codecs) expectAllMessages(received.get(byCodec.get(codec)!)!, messagesFor(codec));
    for (const [codec, calls] of decompressions) expect(calls, `${codec} batches decompressed by sluice's codec`).toBeGreaterThan(0);
    const stored = await storedCodecs([...byCodec.values()]);
    if (stored) for (const codec of codecs) expect(stored.get(byCodec.get(codec)!)).toEqual(new Set([codec]));
  });

  it('writes gzip, snappy and lz4 that the Java consumer reads', async () => {
    const codecs = ['gzip', 'snappy', 'lz4'] as const satisfies readonly Compression[];
    const byCodec = await createTopics('codecs-to-java', codecs);
    const compressed = { snappy: vi.spyOn(snappyCodec, 'compress'), lz4: vi.spyOn(lz4Codec, 'compress') };
    let compressions: (readonly [string, number])[];
    try {
      for (const codec of codecs) {
        const topic = byCodec.get(codec)!;
        const producer = createProducer(testConnection(), { compression: codec }, silentLogger);
        await producer.connect();
        try {
          await producer.send(messagesFor(codec).map((m) => ({ topic, key: m.key, value: m.value })));
        } finally {
          await producer.close();
        }
      }
    } finally {
      // Read before mockRestore, which forgets the calls.
      compressions = Object.entries(compressed).map(([codec, spy]) => [codec, spy.mock.calls.length] as const);
      for (const spy of Object.values(compressed)) spy.mockRestore();
    }
    for (const [codec, calls] of compressions) expect(calls, `${codec} batches compressed by sluice's codec`).toBeGreaterThan(0);

    const reader = path.join(workDir, 'ReadTopics.java');
    writeFileSync(reader, JAVA_READER);
    const output = await runJava(reader, [testBrokers().join(','), String(MESSAGES), ...byCodec.values()]);
    const received = new Map<string, KeyedValue[]>([...byCodec.values()].map((topic) => [topic, []]));
    for (const line of output.split('\n')) {
      if (line.length === 0) continue;
      const [topic, key, ...value] = line.split('\t');
      received.get(topic!)!.push({ key: key!, value: value.join('\t') });
    }
    for (const codec of codecs) expectAllMessages(received.get(byCodec.get(codec)!)!, messagesFor(codec));
    const stored = await storedCodecs([...byCodec.values()]);
    if (stored) for (const codec of codecs) expect(stored.get(byCodec.get(codec)!)).toEqual(new Set([codec]));
  });
});
