/**
 * Where a record's event time comes from when a window names no `time:`. A source's message
 * timestamp is an event time for most sources (Kafka's timestamp, a commit time, the generator's
 * simulated time); the file and stdin sources only know when they read a line, which is the wall
 * clock. A format may read an event time from the message itself (Debezium's `ts_ms`), which then
 * wins. Validation refuses a window that would otherwise group records by the wall clock.
 *
 * These facts belong on SourceDef and FormatDef in component.ts; a def declares them beside its
 * type (`SourceDef<C> & ArrivalTimeSource`) and validation reads them through the guards below.
 */

/** A source whose messages carry the time they were read, not when their event happened. */
export interface ArrivalTimeSource {
  readonly messageTime: 'arrival';
}

/** A format that reads each record's event time from the message itself. */
export interface EventTimeFormat {
  readonly decodesEventTime: true;
}

export function stampsArrivalTime(def: object): boolean {
  return 'messageTime' in def && def.messageTime === 'arrival';
}

export function decodesEventTime(def: object): boolean {
  return 'decodesEventTime' in def && def.decodesEventTime === true;
}
