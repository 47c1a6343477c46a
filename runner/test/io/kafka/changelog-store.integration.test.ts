import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../../src/engine/checkpoint/checkpoint.ts';
import { StateError } from '../../../src/engine/checkpoint/checkpoint.ts';
import type { JsonValue } from '../../../src/engine/component.ts';
import { causedBy, FencedError } from '../../../src/engine/errors.ts';
import { silentLogger } from '../../../src/engine/logger.ts';
import { ChangelogStateStore, type ChangelogStoreOptions } from '../../../src/io/kafka/changelog-store.ts';
import { createProducer, readTopicsToEnd, type KafkaAdmin } from '../../../src/io/kafka/client.ts';
import { openAdmin, testConnection, uniqueName } from './test-broker.ts';

/** The `kafka` state store against a real broker: what a task restoring its state may meet. */
describe('kafka state store', () => {
  let admin: KafkaAdmin;
  const open: ChangelogStateStore[] = [];
  beforeAll(async () => {
    admin = await openAdmin();
  });
  afterAll(async () => {
    await Promise.all(open.map((s) => s.close()));
    await admin.close();
  });

  const identity = { kind: 'window', fingerprint: 'f1', parts: null };

  function store(app: string, extra: Partial<ChangelogStoreOptions> = {}): ChangelogStateStore {
    const s = new ChangelogStateStore(
      {
        connection: testConnection(),
        applicationId: app,
        steps: ['hourly'],
        groups: new Map(),
        task: { id: '1_0', stage: '1', partition: 0, partitions: 1, group: `${app}-repartition`, topic: `${app}-repartition` },
        ...extra,
      },
      silentLogger,
    );
    open.push(s);
    return s;
  }

  function checkpoint(app: string, epoch: number, count: number): Checkpoint {
    const entries = new Map<string, JsonValue>([['42/login/2025-03-03T07', { count }]]);
    return { applicationId: app, epoch, positions: {}, states: new Map([['hourly', { header: { watermark: epoch }, entries }]]), identities: { hourly: identity }, sinks: {}, takenAt: Date.now() };
  }

  it('restores what the last commit wrote', async () => {
    const app = uniqueName('store-restore');
    const first = store(app);
    await first.open();
    await first.commit(checkpoint(app, 1, 3));
    await first.commit(checkpoint(app, 2, 5));

    const next = store(app);
    await next.open();
    const cp = await next.load();
    expect(cp?.epoch).toBe(2);
    expect(cp?.states.get('hourly')?.entries.get('42/login/2025-03-03T07')).toEqual({ count: 5 });
  });

  it('a restore overtaken by another instance (it registered later and committed between the checkpoint and changelog reads) is a handover: fenced, not lost state', async () => {
    const app = uniqueName('store-overtaken');
    const first = store(app);
    await first.open();
    await first.commit(checkpoint(app, 1, 3));

    // The restoring instance reads the checkpoint record, then the changelog; between the two, a
    // third instance fences it and commits checkpoint 2, as a process that lost its partition
    // in a rebalance it has not heard of yet meets it.
    let reads = 0;
    const overtaker = store(app);
    const restoring = store(app, {
      readTopics: async (...args: Parameters<typeof readTopicsToEnd>) => {
        if (++reads === 2) {
          await overtaker.open();
          const cp = await overtaker.load();
          expect(cp?.epoch).toBe(1);
          await overtaker.commit(checkpoint(app, 2, 5));
        }
        return readTopicsToEnd(...args);
      },
    });
    await restoring.open();
    const err = await restoring.load().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(reads).toBeGreaterThanOrEqual(2);
    expect(err instanceof StateError, `not lost state: ${String(err)}`).toBe(false);
    expect(causedBy(err, FencedError), String(err)).toBe(true);
    expect(String(err)).toMatch(/restored checkpoint 1: it committed checkpoint 2 meanwhile/);

    // It was fenced indeed: its own commit is refused, and the overtaker's state stands.
    const refused = await restoring.commit(checkpoint(app, 2, 99)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(causedBy(refused, FencedError), String(refused)).toBe(true);
    const last = store(app);
    await last.open();
    const cp = await last.load();
    expect(cp?.epoch).toBe(2);
    expect(cp?.states.get('hourly')?.entries.get('42/login/2025-03-03T07')).toEqual({ count: 5 });
  });

  it.each([
    ['behind', 1],
    ['ahead', 9],
  ])('a changelog header %s of the checkpoint record, written by someone else, is still refused as lost state', async (_, epoch) => {
    const app = uniqueName('store-tampered');
    const first = store(app);
    await first.open();
    await first.commit(checkpoint(app, 1, 3));
    await first.commit(checkpoint(app, 2, 5));
    const producer = createProducer(testConnection(), {}, silentLogger);
    await producer.connect();
    await producer.send([{ topic: `${app}-hourly-changelog`, key: '__header', value: JSON.stringify({ epoch, header: null }), partition: 0 }]);
    await producer.close();

    const next = store(app);
    await next.open();
    const err = await next.load().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(StateError);
    expect(String(err)).toContain(`is at checkpoint ${epoch}, not 2`);
  });
});
