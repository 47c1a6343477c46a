/**
 * Seed-shaped Debezium change events for the Kafka suites and the Kafka benchmark: the generator's
 * employee-activity simulator, encoded exactly as Debezium 2.7's JSON converter puts them on the
 * topic (schema envelope, activity_timestamp in epoch microseconds, tombstones after deletes).
 */
import { EMPLOYEE_ACTIVITY_DEFAULTS, EmployeeActivitySimulator } from '../../src/components/sources/generator/employee-activity.ts';
import { stringifyJson } from '../../src/engine/json.ts';
import type { ProducedMessage } from '../../src/io/kafka/client.ts';

export const ACTIVITIES_TOPIC = 'employee-server.public.employee_activities';

export interface SimulatedBatch {
  messages: ProducedMessage[];
  /** Row ids of the INSERT (`op: c`) events: what the processed topic must hold. */
  insertIds: number[];
}

/** A source of encoded events; call `take(n)` repeatedly for a stream. */
export class DebeziumEventStream {
  private readonly simulator: EmployeeActivitySimulator;
  private readonly schemaTexts = new WeakMap<object, string>();

  constructor(
    private readonly topic: string,
    seed = 1,
    startMs = Date.parse('2025-01-06T08:00:00Z'),
  ) {
    this.simulator = new EmployeeActivitySimulator({ ...EMPLOYEE_ACTIVITY_DEFAULTS, seed, startMs });
  }

  /** Schemas repeat: each is serialised once, then only payloads (same text as stringifyJson of the whole). */
  private text(envelope: { schema: object; payload: unknown } | null): string | null {
    if (envelope === null) return null;
    let schema = this.schemaTexts.get(envelope.schema);
    if (schema === undefined) this.schemaTexts.set(envelope.schema, (schema = stringifyJson(envelope.schema)));
    return `{"schema":${schema},"payload":${stringifyJson(envelope.payload)}}`;
  }

  take(count: number): SimulatedBatch {
    const messages: ProducedMessage[] = new Array(count);
    const insertIds: number[] = [];
    for (let i = 0; i < count; i++) {
      const event = this.simulator.next();
      if (event.value && event.value.payload.op === 'c') insertIds.push(event.id);
      messages[i] = { topic: this.topic, key: this.text(event.key), value: this.text(event.value) };
    }
    return { messages, insertIds };
  }
}
