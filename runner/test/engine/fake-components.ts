/**
 * In-memory sources, formats and sinks for engine tests: no files, no network, every effect
 * observable (which batches completed, what each write received).
 */
import { Ack } from '../../src/engine/ack.ts';
import {
  PrepareFailure,
  type Decoded,
  type Format,
  type OutboundMessage,
  type PartitionEvent,
  type Prepared,
  type RawBatch,
  type Sink,
  type Source,
  type SourceOutput,
  type Step,
  type StepOutput,
  type WriteResult,
} from '../../src/engine/component.ts';
import { RecordError } from '../../src/engine/errors.ts';
import type { Graph, GraphNode } from '../../src/engine/graph.ts';
import { parsePortRef } from '../../src/engine/graph.ts';
import type { RawMessage, StreamRecord } from '../../src/engine/record.ts';

/** Decodes JSON text; anything else throws a RecordError, as a real format does. */
export const jsonTextFormat: Format = {
  decode(message: RawMessage): Decoded {
    const text = typeof message.value === 'string' ? message.value : String(message.value);
    try {
      return { key: message.key, value: JSON.parse(text), meta: { offset: message.position.offset } };
    } catch (err) {
      throw new RecordError('E_DECODE', `not JSON: ${(err as Error).message}`, 'test');
    }
  },
};

export interface BatchSpec {
  partition: string;
  /** Raw message values (JSON text unless a test wants poison). */
  values: string[];
}

function messagesOf(source: string, spec: BatchSpec, firstOffset: number): RawMessage[] {
  return spec.values.map((value, i) => ({
    key: null,
    value,
    headers: {},
    timestamp: 1_000 + firstOffset + i,
    position: { source, partition: spec.partition, offset: String(firstOffset + i) },
  }));
}

/**
 * Emits the given batches in order, awaiting each emit (backpressure). Records which batch Acks
 * completed. Bounded: `run` resolves after the last batch. Unbounded: it then waits for `stop()`.
 */
export class ScriptedSource implements Source {
  readonly completed: number[] = [];
  emitted = 0;
  maxInFlight = 0;
  stopCalls = 0;
  closed = false;
  /** Partition events to send before the batches. */
  assignFirst: string[] | undefined;
  private stopped = false;
  private wakeStop: (() => void) | undefined;
  private readonly offsets = new Map<string, number>();

  constructor(
    readonly name: string,
    private readonly batches: BatchSpec[],
    readonly bounded = true,
  ) {}

  get inFlight(): number {
    return this.emitted - this.completed.length;
  }

  async run(out: SourceOutput): Promise<void> {
    if (this.assignFirst) out.assign(this.assignFirst);
    for (let b = 0; b < this.batches.length && !this.stopped; b++) {
      const spec = this.batches[b]!;
      const first = this.offsets.get(spec.partition) ?? 0;
      this.offsets.set(spec.partition, first + spec.values.length);
      const batch: RawBatch = {
        partition: spec.partition,
        messages: messagesOf(this.name, spec, first),
        ack: new Ack(() => this.completed.push(b)),
      };
      this.emitted++;
      this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
      await out.emit(batch);
    }
    if (!this.bounded && !this.stopped) await new Promise<void>((resolve) => (this.wakeStop = resolve));
  }

  async stop(): Promise<void> {
    this.stopCalls++;
    this.stopped = true;
    this.wakeStop?.();
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/**
 * Collects what it is asked to write. `hold()` makes writes wait until `releaseHeld()`; `failNext`
 * makes one throw; `unpreparable` answers the records it picks with a PrepareFailure; `refusing`
 * refuses the messages it picks (they are not collected), as a database refuses a value.
 */
export class RecordingSink implements Sink {
  readonly writes: OutboundMessage[][] = [];
  opened = false;
  closed = false;
  failNext: Error | undefined;
  unpreparable: ((record: StreamRecord) => boolean) | undefined;
  refusing: ((message: OutboundMessage) => boolean) | undefined;
  private holding = false;
  private held: (() => void)[] = [];

  async open(): Promise<void> {
    this.opened = true;
  }

  prepare(records: readonly StreamRecord[]): Prepared[] {
    const refuse = this.unpreparable;
    return records.map((r) =>
      refuse?.(r)
        ? new PrepareFailure(new RecordError('E_TEST_PREPARE', `cannot prepare ${JSON.stringify(r.value)}`, 'sinks.test'))
        : { key: r.key, value: r.value, ...(Object.keys(r.headers).length > 0 ? { headers: r.headers } : {}) },
    );
  }

  async write(messages: OutboundMessage[]): Promise<WriteResult | void> {
    if (this.holding) await new Promise<void>((resolve) => this.held.push(resolve));
    if (this.failNext) {
      const err = this.failNext;
      this.failNext = undefined;
      throw err;
    }
    const refuse = this.refusing;
    if (!refuse) {
      this.writes.push(messages);
      return;
    }
    const refused = messages.flatMap((m, index) => (refuse(m) ? [{ index, error: new RecordError('E_TEST_REFUSED', `refused ${JSON.stringify(m.value)}`, 'sinks.test') }] : []));
    this.writes.push(messages.filter((_, i) => !refused.some((r) => r.index === i)));
    return { refused };
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  hold(): void {
    this.holding = true;
  }

  /** Lets the held writes (and all later ones) through. */
  releaseHeld(): void {
    this.holding = false;
    for (const w of this.held.splice(0)) w();
  }

  get heldWrites(): number {
    return this.held.length;
  }

  get values(): unknown[] {
    return this.writes.flat().map((m) => m.value);
  }
}

/** A step from plain functions, recording the calls it got. */
export class ScriptedStep implements Step {
  readonly calls: string[] = [];
  constructor(
    private readonly hooks: {
      process?: (records: StreamRecord[], out: StepOutput) => void | Promise<void>;
      onTick?: (now: number, out: StepOutput) => void;
      onEnd?: (out: StepOutput) => void;
      ports?: string[];
    } = {},
  ) {
    if (hooks.ports) this.ports = hooks.ports;
  }
  readonly ports?: readonly string[];

  process(batch: { partition: string; records: StreamRecord[] }, out: StepOutput): void | Promise<void> {
    this.calls.push(`process:${batch.partition}:${batch.records.length}`);
    if (this.hooks.process) return this.hooks.process(batch.records, out);
    out.emit(batch.records);
  }

  onPartitions(event: PartitionEvent): void {
    if (event.type === 'progress') this.calls.push(`progress:${event.origin}:${event.time ?? '-'}${event.idle ? ':idle' : ''}`);
    else this.calls.push(`${event.type}:${event.partitions.join(',')}`);
  }

  onTick(now: number, out: StepOutput): void {
    this.calls.push(`tick:${now}`);
    this.hooks.onTick?.(now, out);
  }

  onEnd(out: StepOutput): void {
    this.calls.push('end');
    this.hooks.onEnd?.(out);
  }

  stats(): Record<string, number> {
    return { calls: this.calls.length };
  }
}

/** Builds a graph from a terse description: `from` lists are `node` or `node.port` refs. */
export function graphOf(
  nodes: (
    | { source: string; impl: Source; format?: Format }
    | { step: string; impl: Step; from: string[] }
    | { sink: string; impl: Sink; from: string[] }
  )[],
): Graph {
  const out: GraphNode[] = nodes.map((n) => {
    if ('source' in n) return { role: 'source', name: n.source, source: n.impl, format: n.format ?? jsonTextFormat };
    if ('step' in n) return { role: 'step', name: n.step, step: n.impl, inputs: n.from.map(parsePortRef) };
    return { role: 'sink', name: n.sink, sink: n.impl, inputs: n.from.map(parsePortRef) };
  });
  return { name: 'test', nodes: out };
}

/** Lets pending promise callbacks and I/O callbacks run. */
export function settle(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
