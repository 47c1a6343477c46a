import { describe, expect, it } from 'vitest';
import { Ack } from '../../../src/engine/ack.ts';
import { VersionedTable, type RowVersion } from '../../../src/engine/join/versioned-table.ts';

const row = (dept: string) => ({ department: dept });

/** The `from` of every version of `key`, in the order the table holds them. */
function froms(t: VersionedTable, key: string): number[] | undefined {
  return t.versionsOf(key)?.map((v) => v.from);
}

describe('VersionedTable: put, at, latest', () => {
  it('answers the version holding at a time, and the latest one', () => {
    const t = new VersionedTable();
    expect(t.put('e1', { from: 10, row: row('Sales') })).toBeUndefined();
    expect(t.put('e1', { from: 20, row: row('Marketing') })).toBeUndefined();
    expect(t.put('e2', { from: 15, row: row('Finance') })).toBeUndefined();

    expect(t.at('e1', 9)).toBeUndefined();
    expect(t.at('e1', 10)).toEqual(row('Sales'));
    expect(t.at('e1', 19)).toEqual(row('Sales'));
    expect(t.at('e1', 20)).toEqual(row('Marketing'));
    expect(t.at('e1', 1_000)).toEqual(row('Marketing'));
    expect(t.at('e2', 14)).toBeUndefined();
    expect(t.at('e2', 15)).toEqual(row('Finance'));
    expect(t.at('nobody', 100)).toBeUndefined();

    expect(t.latest('e1')).toEqual(row('Marketing'));
    expect(t.latest('e2')).toEqual(row('Finance'));
    expect(t.latest('nobody')).toBeUndefined();
    expect(t.size).toBe(2);
    expect(t.versions).toBe(3);
  });

  it('replaces a version with the same `from` and returns the one replaced', () => {
    const t = new VersionedTable();
    const first: RowVersion = { from: 10, row: row('Sales') };
    t.put('e1', first);
    t.put('e1', { from: 30, row: row('Legal') });
    const second: RowVersion = { from: 10, row: row('Marketing') };
    expect(t.put('e1', second)).toBe(first);
    expect(froms(t, 'e1')).toEqual([10, 30]);
    expect(t.at('e1', 10)).toEqual(row('Marketing'));
    expect(t.versions).toBe(2);
    // The latest version replaced too.
    const third: RowVersion = { from: 30, row: null };
    expect(t.put('e1', third)?.row).toEqual(row('Legal'));
    expect(t.latest('e1')).toBeUndefined();
  });

  it('keeps versions in time order whatever order they are put in', () => {
    const t = new VersionedTable();
    for (const from of [50, 10, 40, 20, 30, 5]) t.put('k', { from, row: { v: from } });
    expect(froms(t, 'k')).toEqual([5, 10, 20, 30, 40, 50]);
    for (const time of [5, 9, 10, 25, 39, 40, 49, 50, 99]) {
      const expected = [5, 10, 20, 30, 40, 50].filter((f) => f <= time).at(-1);
      expect(t.at('k', time)).toEqual({ v: expected });
    }
    expect(t.latest('k')).toEqual({ v: 50 });
  });

  it('treats a null row as a delete: no row between a delete and a re-insert', () => {
    const t = new VersionedTable();
    t.put('d', { from: 10, row: row('Finance') });
    t.put('d', { from: 20, row: null });
    t.put('d', { from: 30, row: row('Engineering') });
    expect(t.at('d', 15)).toEqual(row('Finance'));
    expect(t.at('d', 20)).toBeUndefined();
    expect(t.at('d', 29)).toBeUndefined();
    expect(t.at('d', 30)).toEqual(row('Engineering'));
    expect(t.latest('d')).toEqual(row('Engineering'));
    t.put('d', { from: 40, row: null });
    expect(t.latest('d')).toBeUndefined();
    // A deleted key still holds its versions until pruned.
    expect(t.size).toBe(1);
    expect(t.versions).toBe(4);
  });
});

describe('VersionedTable: prune', () => {
  it('keeps the version holding at the horizon and drops those before it', () => {
    const t = new VersionedTable();
    for (const from of [10, 20, 30, 40]) t.put('k', { from, row: { v: from } });
    expect(t.prune(9)).toBe(0);
    expect(t.prune(10)).toBe(0);
    expect(froms(t, 'k')).toEqual([10, 20, 30, 40]);
    expect(t.prune(25)).toBe(1);
    expect(froms(t, 'k')).toEqual([20, 30, 40]);
    // Every lookup at the horizon or later still answers as before.
    expect(t.at('k', 25)).toEqual({ v: 20 });
    expect(t.prune(30)).toBe(1);
    expect(froms(t, 'k')).toEqual([30, 40]);
    expect(t.prune(1_000)).toBe(1);
    expect(froms(t, 'k')).toEqual([40]);
    expect(t.at('k', 1_000)).toEqual({ v: 40 });
  });

  it('drops a delete holding at the horizon (no row either way), and removes a key left with nothing', () => {
    const t = new VersionedTable();
    t.put('gone', { from: 10, row: row('a') });
    t.put('gone', { from: 20, row: null });
    t.put('back', { from: 10, row: row('a') });
    t.put('back', { from: 20, row: null });
    t.put('back', { from: 40, row: row('b') });
    expect(t.prune(25)).toBe(4);
    expect(t.versionsOf('gone')).toBeUndefined();
    expect([...t.keys()]).toEqual(['back']);
    expect(froms(t, 'back')).toEqual([40]);
    expect(t.at('back', 25)).toBeUndefined();
    expect(t.at('back', 40)).toEqual(row('b'));
    expect(t.size).toBe(1);
  });

  it('drops a delete exactly at the horizon', () => {
    const t = new VersionedTable();
    t.put('k', { from: 10, row: row('a') });
    t.put('k', { from: 20, row: null });
    expect(t.prune(19)).toBe(0);
    expect(t.prune(20)).toBe(2);
    expect(t.size).toBe(0);
  });

  it('sweeps only the keys it is given', () => {
    const t = new VersionedTable();
    for (const key of ['a', 'b']) for (const from of [1, 2]) t.put(key, { from, row: { key, from } });
    expect(t.prune(5, ['a'])).toBe(1);
    expect(froms(t, 'a')).toEqual([2]);
    expect(froms(t, 'b')).toEqual([1, 2]);
    expect(t.prune(5, ['missing'])).toBe(0);
  });

  it('calls onDrop for each version dropped, so their references are released', () => {
    const t = new VersionedTable();
    const acks = [10, 20, 30].map(() => {
      const ack = Ack.none();
      ack.retain();
      ack.seal();
      return ack;
    });
    t.put('k', { from: 10, row: row('a'), ack: acks[0]! });
    t.put('k', { from: 20, row: null, ack: acks[1]! });
    t.put('k', { from: 30, row: row('b'), ack: acks[2]! });
    const dropped: RowVersion[] = [];
    t.prune(25, undefined, (v) => {
      dropped.push(v);
      v.ack?.release();
    });
    expect(dropped.map((v) => v.from)).toEqual([10, 20]);
    expect(acks.map((a) => a.isComplete)).toEqual([true, true, false]);
    // Nothing left to drop: no further calls.
    t.prune(29, undefined, () => expect.unreachable());
  });
});

describe('VersionedTable: changes, load, allVersions', () => {
  it('reports keys changed since the last call, removed keys included', () => {
    const t = new VersionedTable();
    expect(t.takeChanges()).toEqual([]);
    t.put('a', { from: 1, row: { v: 1 } });
    t.put('b', { from: 1, row: null });
    t.put('a', { from: 2, row: { v: 2 } });
    expect(t.takeChanges().sort()).toEqual(['a', 'b']);
    expect(t.takeChanges()).toEqual([]);
    // A prune that drops nothing changes nothing; one that removes a key reports it.
    t.prune(0);
    expect(t.takeChanges()).toEqual([]);
    t.prune(5);
    expect(t.takeChanges().sort()).toEqual(['a', 'b']);
    expect(t.versionsOf('b')).toBeUndefined();
    expect(froms(t, 'a')).toEqual([2]);
  });

  it('keeps no changes when told nothing will take them (a run without checkpoints)', () => {
    const t = new VersionedTable(false);
    t.put('a', { from: 1, row: { v: 1 } });
    t.put('b', { from: 1, row: null });
    t.prune(5);
    expect(t.takeChanges()).toEqual([]);
    expect(froms(t, 'a')).toEqual([1]);
  });

  it('loads versions sorted by time, ignores an empty list, and lists every version', () => {
    const t = new VersionedTable();
    t.load('k', [
      { from: 30, row: { v: 3 } },
      { from: 10, row: { v: 1 } },
      { from: 20, row: null },
    ]);
    t.load('empty', []);
    expect(froms(t, 'k')).toEqual([10, 20, 30]);
    expect(t.versionsOf('empty')).toBeUndefined();
    expect(t.at('k', 25)).toBeUndefined();
    expect(t.at('k', 35)).toEqual({ v: 3 });
    t.put('j', { from: 5, row: { v: 0 } });
    expect([...t.allVersions()].map((v) => v.from).sort((a, b) => a - b)).toEqual([5, 10, 20, 30]);
  });
});
