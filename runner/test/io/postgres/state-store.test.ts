/** The postgres state store's pure parts: the state delta, the owner check, the stored checkpoint row. */
import { describe, expect, it } from 'vitest';
import type { Checkpoint } from '../../../src/engine/checkpoint/checkpoint.ts';
import type { JsonValue } from '../../../src/engine/component.ts';
import {
  checkOwner,
  checkpointFromRow,
  checkpointRowJson,
  createTablesStatements,
  deleteEntriesStatement,
  stateDelta,
  storeTables,
  upsertEntriesStatement,
} from '../../../src/io/postgres/state-store.ts';

const entries = (o: Record<string, JsonValue>) => new Map(Object.entries(o));
const texts = (o: Record<string, JsonValue>) => new Map(Object.entries(o).map(([k, v]) => [k, JSON.stringify(v)]));

describe('stateDelta', () => {
  it('writes everything the first time, and nothing is deleted', () => {
    const d = stateDelta(undefined, entries({ a: 1, b: { n: 2 } }));
    expect(d).toEqual({ upserts: [['a', '1'], ['b', '{"n":2}']], deletes: [], bytes: 8 });
  });

  it('writes only changed and new entries, and deletes the ones that are gone', () => {
    const before = texts({ same: { n: 1 }, changed: { n: 1 }, closed: { n: 5 } });
    const d = stateDelta(before, entries({ same: { n: 1 }, changed: { n: 2 }, opened: [1] }));
    expect(d.upserts).toEqual([['changed', '{"n":2}'], ['opened', '[1]']]);
    expect(d.deletes).toEqual(['closed']);
    // Bytes count every entry kept, written or not: the state's size, as the progress line shows it.
    expect(d.bytes).toBe('{"n":1}'.length * 2 + '[1]'.length);
  });

  it('replaying the deltas over the first state gives the last state, whatever happened between (independent check)', () => {
    // A random walk of open/update/close over 200 keys; the table is modelled as a plain Map.
    let seed = 7;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const table = new Map<string, string>();
    let state = new Map<string, JsonValue>();
    for (let round = 0; round < 50; round++) {
      const next = new Map(state);
      for (let i = 0; i < 40; i++) {
        const key = `k${Math.floor(rnd() * 200)}`;
        const r = rnd();
        if (r < 0.3) next.delete(key);
        else next.set(key, { count: Math.floor(r * 10) });
      }
      const d = stateDelta(new Map(table), next);
      for (const [k, t] of d.upserts) table.set(k, t);
      for (const k of d.deletes) table.delete(k);
      state = next;
      expect(new Map([...table].map(([k, t]) => [k, JSON.parse(t) as JsonValue]))).toEqual(state);
    }
  });
});

describe('checkOwner', () => {
  it('lets the owner commit', () => {
    expect(() => checkOwner(3, 3, 'app', 'db')).not.toThrow();
  });

  it('refuses an instance whose owner epoch was bumped by a newer one, saying another instance took over', () => {
    expect(() => checkOwner(4, 3, 'app', 'db')).toThrow(expect.objectContaining({ code: 'E_STATE_FENCED', message: expect.stringContaining('another instance of application `app` took over (owner epoch 4') }));
  });

  it('refuses when the row is gone, and a commit before any load', () => {
    expect(() => checkOwner(undefined, 3, 'app', 'db')).toThrow(/owner epoch gone/);
    expect(() => checkOwner(1, undefined, 'app', 'db')).toThrow(/commit before load/);
  });
});

describe('the stored checkpoint', () => {
  const cp: Checkpoint = {
    applicationId: 'app',
    epoch: 12,
    positions: { 'events/t/0': '41', 'cdc/t/0': '23/25' },
    states: new Map([
      ['hourly', { header: { seq: 3, watermarks: { 'events/t/0': 1000 } }, entries: entries({ '0|3600000|[1,"a"]': { accs: [2] }, '0|3600000|[2,"b"]': { rows: [{ z: 1, a: 2 }] } }) }],
      ['empty', { header: null, entries: new Map() }],
    ]),
    identities: { hourly: { kind: 'window', fingerprint: 'f1', parts: { size: '1h' } }, empty: { kind: 'window', fingerprint: 'f2', parts: {} } },
    sinks: { out: { bytes: 10 } },
    takenAt: 1_700_000_000_000,
  };

  it('holds headers, not entries, in the row; entries come back from their rows', () => {
    const row = checkpointRowJson(cp);
    expect(row.headers).toEqual({ hourly: cp.states.get('hourly')!.header, empty: null });
    expect(JSON.stringify(row)).not.toContain('accs');
    const rows = new Map([['hourly', texts(Object.fromEntries(cp.states.get('hourly')!.entries))]]);
    // Through JSON as the jsonb column gives it back.
    expect(checkpointFromRow(JSON.parse(JSON.stringify(row)), '12', rows, 'db')).toEqual(cp);
  });

  it('keeps the field order of entry values (they may hold record values that reach outputs)', () => {
    const rows = new Map([['hourly', new Map([['k', '{"z":1,"a":2}']])]]);
    const back = checkpointFromRow(checkpointRowJson(cp), 12, rows, 'db');
    expect(Object.keys(back.states.get('hourly')!.entries.get('k') as object)).toEqual(['z', 'a']);
  });

  it('refuses a row that is not a sluice checkpoint, an epoch column that disagrees, and an entry that is not JSON', () => {
    expect(() => checkpointFromRow('x', 12, new Map(), 'db')).toThrow(expect.objectContaining({ code: 'E_STATE_CORRUPT' }));
    expect(() => checkpointFromRow({ ...checkpointRowJson(cp), headers: undefined }, 12, new Map(), 'db')).toThrow(/headers missing/);
    expect(() => checkpointFromRow({ ...checkpointRowJson(cp), format: 99 }, 12, new Map(), 'db')).toThrow(expect.objectContaining({ code: 'E_STATE_FORMAT' }));
    expect(() => checkpointFromRow(checkpointRowJson(cp), 11, new Map(), 'db')).toThrow(/epoch column \(11\) does not match the checkpoint's \(12\)/);
    expect(() => checkpointFromRow(checkpointRowJson(cp), 12, new Map([['hourly', new Map([['k', '{bad']])]]), 'db')).toThrow(/state of `hourly`, key k: not JSON/);
  });
});

describe('statements', () => {
  const t = storeTables('my schema');

  it('quote the schema, and create it only when it is not public', () => {
    expect(t).toEqual({ checkpoints: '"my schema"."sluice_checkpoints"', state: '"my schema"."sluice_state"' });
    expect(createTablesStatements('public').some((s) => s.startsWith('CREATE SCHEMA'))).toBe(false);
    expect(createTablesStatements('x')[0]).toBe('CREATE SCHEMA IF NOT EXISTS "x"');
  });

  it('upsert all changed entries of a step with one JSON object parameter, keeping each value text as it is', () => {
    const s = upsertEntriesStatement(t, 'app', 'hourly', [['a"b', '{"z":1,"a":2}'], ['c', 'null']]);
    expect(s.values).toEqual(['app', 'hourly', '{"a\\"b":{"z":1,"a":2},"c":null}']);
    expect(JSON.parse(s.values[2] as string)).toEqual({ 'a"b': { z: 1, a: 2 }, c: null });
    expect(s.text).toContain('json_each($3::json)');
    expect(s.text).toContain('ON CONFLICT (application_id, step, key) DO UPDATE SET value = EXCLUDED.value');
  });

  it('delete gone entries by key list', () => {
    expect(deleteEntriesStatement(t, 'app', 'hourly', ['k1', 'k2'])).toEqual({
      text: 'DELETE FROM "my schema"."sluice_state" WHERE application_id = $1 AND step = $2 AND key = ANY($3::text[])',
      values: ['app', 'hourly', ['k1', 'k2']],
    });
  });
});
