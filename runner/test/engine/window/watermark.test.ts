import { describe, expect, it } from 'vitest';
import { combinePartitionWatermarks, PartitionWatermarks } from '../../../src/engine/window/watermark.ts';

const NEG = Number.NEGATIVE_INFINITY;

/** The rule over plain `{watermark, idle}` entries. */
const combine = (ps: { watermark: number; idle: boolean }[]) => combinePartitionWatermarks(ps, (p) => p.watermark, (p) => p.idle);

describe('combinePartitionWatermarks', () => {
  it('is minus infinity without partitions', () => {
    expect(combine([])).toBe(NEG);
  });

  it('takes the minimum over active partitions', () => {
    expect(combine([{ watermark: 10, idle: false }, { watermark: 5, idle: false }])).toBe(5);
  });

  it('ignores idle partitions while any is active', () => {
    expect(combine([{ watermark: 10, idle: false }, { watermark: 5, idle: true }])).toBe(10);
  });

  it('takes the maximum when all are idle', () => {
    expect(combine([{ watermark: 10, idle: true }, { watermark: 5, idle: true }])).toBe(10);
  });
});

describe('PartitionWatermarks', () => {
  it('is the highest event time minus lateness for one partition', () => {
    const w = new PartitionWatermarks(100, undefined);
    w.observe('p0', 1000, 0);
    w.observe('p0', 900, 0);
    expect(w.advance(0)).toBe(900);
  });

  it('takes the minimum across partitions', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('p0', 5000, 0);
    w.observe('p1', 2000, 0);
    expect(w.advance(0)).toBe(2000);
    w.observe('p1', 7000, 0);
    expect(w.advance(0)).toBe(5000);
  });

  it('never goes back', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('p0', 5000, 0);
    expect(w.advance(0)).toBe(5000);
    w.observe('p1', 1000, 0); // a new, slower partition appears
    expect(w.advance(0)).toBe(5000);
  });

  it('is held by an assigned partition that has sent nothing', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['p0', 'p1'], 0);
    w.observe('p0', 5000, 0);
    expect(w.advance(10_000_000)).toBe(NEG);
  });

  it('stops being held by a partition idle for longer than the timeout', () => {
    const w = new PartitionWatermarks(0, 1000);
    w.assign(['p0', 'p1'], 0);
    w.observe('p0', 5000, 500);
    expect(w.advance(999)).toBe(NEG); // p1 not idle yet
    expect(w.advance(1000)).toBe(5000); // p1 idle; p0 active since 500
  });

  it('uses the maximum once every partition is idle', () => {
    const w = new PartitionWatermarks(0, 1000);
    w.observe('p0', 5000, 0);
    w.observe('p1', 3000, 0);
    expect(w.advance(0)).toBe(3000);
    expect(w.advance(1000)).toBe(5000);
  });

  it('lets a partition that speaks again hold the watermark from where it is, never lower', () => {
    const w = new PartitionWatermarks(0, 1000);
    w.observe('p0', 5000, 0);
    w.observe('p1', 3000, 0);
    w.observe('p0', 9000, 1500); // p1 idle now
    expect(w.advance(1500)).toBe(9000);
    w.observe('p1', 4000, 1600); // p1 active again, far behind
    expect(w.advance(1600)).toBe(9000);
    w.observe('p1', 12000, 1700);
    w.observe('p0', 10000, 1700);
    expect(w.advance(1700)).toBe(10000);
  });

  it('stops waiting for a revoked partition', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['p0', 'p1'], 0);
    w.observe('p0', 5000, 0);
    expect(w.advance(0)).toBe(NEG);
    w.revoke(['p1']);
    expect(w.advance(0)).toBe(5000);
  });

  it('restarts the idle period of a partition on reassignment', () => {
    const w = new PartitionWatermarks(0, 1000);
    w.observe('p0', 5000, 0);
    w.observe('p1', 3000, 0);
    w.assign(['p1'], 900);
    expect(w.advance(1500)).toBe(3000); // p0 idle, p1 not (assigned at 900)
  });

  it('jumps to plus infinity at the end of input', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['p0'], 0);
    expect(w.end()).toBe(Number.POSITIVE_INFINITY);
    expect(w.advance(0)).toBe(Number.POSITIVE_INFINITY);
  });

  it('round-trips through a snapshot', () => {
    const w = new PartitionWatermarks(10, 1000);
    w.assign(['p0', 'p1'], 0);
    w.observe('p0', 5000, 0);
    w.advance(2000);
    const snap = JSON.parse(JSON.stringify(w.snapshot()));
    const r = new PartitionWatermarks(10, 1000);
    r.restore(snap, 5000);
    expect(r.value).toBe(w.value);
    expect(r.snapshot()).toEqual(w.snapshot());
    // Restored partitions are not idle at once: the restart is not their silence.
    expect(r.partitionWatermarks(5000).map((p) => p.idle)).toEqual([false, false]);
  });
});

describe('PartitionWatermarks.holdAt', () => {
  it('names the active partition with the lowest watermark while another is ahead, and the one ahead', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('p0', 5000, 0);
    w.observe('p1', 2000, 0);
    w.advance(0);
    expect(w.holdAt(0)).toEqual({ partition: 'p1', since: 0, watermark: 2000, aheadPartition: 'p0', ahead: 5000, quietFor: 0 });
  });

  it('keeps its start while the watermark stands, and starts again when it moves', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('p0', 5000, 0);
    w.observe('p1', 2000, 0);
    w.advance(0);
    w.holdAt(0);
    w.observe('p0', 9000, 30_000); // the one ahead moves on: still held by p1
    w.advance(30_000);
    expect(w.holdAt(70_000)).toMatchObject({ partition: 'p1', since: 0, ahead: 9000, quietFor: 70_000 });
    w.observe('p1', 3000, 80_000); // the holder moves: the watermark with it
    w.advance(80_000);
    expect(w.holdAt(80_000)).toMatchObject({ partition: 'p1', since: 80_000, watermark: 3000, quietFor: 0 });
  });

  it('counts an assigned partition that has sent nothing as holding from the beginning', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['p0', 'p1'], 0);
    w.observe('p0', 5000, 0);
    w.advance(0);
    expect(w.holdAt(10)).toMatchObject({ partition: 'p1', watermark: NEG, ahead: 5000, quietFor: 10 });
  });

  it('is undefined with one partition, with all level, once the holder is idle, and at the end', () => {
    const one = new PartitionWatermarks(0, undefined);
    one.observe('p0', 5000, 0);
    one.advance(0);
    expect(one.holdAt(0)).toBeUndefined();

    const level = new PartitionWatermarks(0, undefined);
    level.observe('p0', 5000, 0);
    level.observe('p1', 5000, 0);
    level.advance(0);
    expect(level.holdAt(0)).toBeUndefined();

    const idle = new PartitionWatermarks(0, 1000);
    idle.observe('p0', 5000, 0);
    idle.observe('p1', 2000, 0);
    idle.advance(0);
    expect(idle.holdAt(0)?.partition).toBe('p1');
    idle.observe('p0', 6000, 900);
    idle.advance(1000); // p1 idle: the watermark moves to p0's
    expect(idle.holdAt(1000)).toBeUndefined();

    const ended = new PartitionWatermarks(0, undefined);
    ended.observe('p0', 5000, 0);
    ended.observe('p1', 2000, 0);
    ended.end();
    expect(ended.holdAt(0)).toBeUndefined();
  });

  it('starts afresh after a restore (not part of the snapshot)', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('p0', 5000, 0);
    w.observe('p1', 2000, 0);
    w.advance(0);
    w.holdAt(0);
    const r = new PartitionWatermarks(0, undefined);
    r.restore(JSON.parse(JSON.stringify(w.snapshot())), 50_000);
    r.advance(50_000);
    expect(r.holdAt(60_000)).toMatchObject({ partition: 'p1', since: 60_000, quietFor: 10_000 });
    expect(Object.keys(w.snapshot())).toEqual(['watermark', 'partitions']);
  });
});
