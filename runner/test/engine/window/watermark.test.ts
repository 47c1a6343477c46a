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

describe('PartitionWatermarks: origins after a repartition, and their progress markers', () => {
  // Two upstream tasks write into one repartition partition; their records interleave in arrival
  // order. `0_0` is fast (far ahead in event time), `0_1` slow.

  it('is the minimum over origins: the fast origin does not close what the slow one still feeds', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['0_0', '0_1'], 0);
    w.observe('0_0', 10_000, 0);
    expect(w.advance(0)).toBe(NEG); // 0_1 not heard from yet
    w.observe('0_1', 1_000, 0);
    expect(w.advance(0)).toBe(1_000); // not 10_000 (the fastest origin's)
    w.observe('0_0', 20_000, 0);
    w.observe('0_1', 4_000, 0); // still in a window [0, 5000) that the fast origin passed long ago
    expect(w.advance(0)).toBe(4_000);
  });

  it('lets a marker raise a quiet origin as a record would', () => {
    const w = new PartitionWatermarks(100, undefined);
    w.observe('0_0', 10_000, 0);
    w.observe('0_1', 1_000, 0);
    expect(w.advance(0)).toBe(900);
    w.progress('0_1', 8_000, false, 10);
    expect(w.advance(10)).toBe(7_900);
    w.progress('0_1', 5_000, false, 20); // a lower time never lowers the origin's highest
    w.progress('0_1', undefined, false, 20);
    expect(w.advance(20)).toBe(7_900);
  });

  it('holds at minus infinity for an assigned origin until it sends a marker with a time (or data)', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['0_0', '0_1'], 0);
    w.observe('0_0', 10_000, 0);
    w.progress('0_1', undefined, false, 0); // alive, has written nothing yet
    expect(w.advance(0)).toBe(NEG);
    w.progress('0_1', 3_000, false, 0);
    expect(w.advance(0)).toBe(3_000);
  });

  it('leaves an origin whose marker says idle out of the minimum', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.assign(['0_0', '0_1'], 0);
    w.observe('0_0', 10_000, 0);
    expect(w.advance(0)).toBe(NEG);
    w.progress('0_1', undefined, true, 0);
    expect(w.advance(0)).toBe(10_000);
    expect(w.partitionWatermarks(0).map((p) => p.idle)).toEqual([false, true]);
  });

  it('takes the maximum when every origin is marker-idle, and never goes back', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.progress('0_0', 10_000, true, 0);
    w.progress('0_1', 4_000, true, 0);
    expect(w.advance(0)).toBe(10_000);
    w.observe('0_1', 5_000, 0); // 0_1 speaks again, behind: the watermark stays
    expect(w.advance(0)).toBe(10_000);
  });

  it('makes an origin active again when data comes from it after an idle marker', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('0_0', 10_000, 0);
    w.progress('0_1', 2_000, true, 0);
    expect(w.advance(0)).toBe(10_000);
    w.observe('0_0', 20_000, 0);
    expect(w.advance(0)).toBe(20_000);
    w.observe('0_1', 21_000, 0); // data: 0_1 is not idle any more
    w.observe('0_0', 25_000, 0);
    expect(w.advance(0)).toBe(21_000); // 0_1 holds it again; still idle it would be 25_000
    expect(w.partitionWatermarks(0).map((p) => p.idle)).toEqual([false, false]);
  });

  it('never infers a marker-driven origin idle from its silence, however long', () => {
    const w = new PartitionWatermarks(0, 1_000);
    w.assign(['0_0', '0_1'], 0);
    w.progress('0_1', 1_000, false, 0); // then nothing: a backlogged or paused upstream
    w.observe('0_0', 10_000, 0);
    expect(w.advance(1_000_000)).toBe(1_000);
    w.observe('0_0', 12_000, 2_000_000);
    expect(w.advance(3_000_000)).toBe(1_000);
    expect(w.holdAt(3_000_000)).toMatchObject({ partition: '0_1', markerDriven: true, quietFor: 3_000_000 });
    // An origin that never sent a marker still goes idle on the timeout.
    const plain = new PartitionWatermarks(0, 1_000);
    plain.assign(['0_0', '0_1'], 0);
    plain.observe('0_1', 1_000, 0);
    plain.observe('0_0', 10_000, 0);
    plain.observe('0_0', 12_000, 1_000_000);
    expect(plain.advance(1_000_000)).toBe(12_000);
  });

  it('does not name a marker-idle origin as the holder', () => {
    const w = new PartitionWatermarks(0, undefined);
    w.observe('0_0', 10_000, 0);
    w.observe('0_1', 2_000, 0);
    w.observe('0_2', 5_000, 0);
    w.advance(0);
    expect(w.holdAt(0)?.partition).toBe('0_1');
    w.progress('0_1', undefined, true, 0);
    w.advance(0);
    const hold = w.holdAt(0);
    expect(hold).toMatchObject({ partition: '0_2', watermark: 5_000, aheadPartition: '0_0' });
    expect(hold?.markerDriven).toBeUndefined();
  });

  it('round-trips marker-driven and idle flags through a snapshot', () => {
    const w = new PartitionWatermarks(10, 1_000);
    w.assign(['0_0', '0_1', '0_2'], 0);
    w.progress('0_0', 5_000, false, 0);
    w.progress('0_1', 3_000, true, 0);
    w.observe('0_2', 7_000, 0);
    expect(w.advance(0)).toBe(4_990);
    const snap = JSON.parse(JSON.stringify(w.snapshot()));
    expect(snap.partitions).toEqual([
      { partition: '0_0', maxEventTime: 5_000, assigned: true, markerDriven: true },
      { partition: '0_1', maxEventTime: 3_000, assigned: true, markerDriven: true, idle: true },
      { partition: '0_2', maxEventTime: 7_000, assigned: true },
    ]);
    const r = new PartitionWatermarks(10, 1_000);
    r.restore(snap, 50_000);
    expect(r.snapshot()).toEqual(w.snapshot());
    // Long after the restore: 0_2 has gone idle by its timeout, 0_0 never does, 0_1 stays idle.
    expect(r.partitionWatermarks(60_000).map((p) => p.idle)).toEqual([false, true, true]);
    expect(r.advance(60_000)).toBe(4_990);
    r.observe('0_1', 3_500, 60_000); // data clears the restored idle flag
    expect(r.partitionWatermarks(60_000).map((p) => p.idle)).toEqual([false, false, true]);
  });

  it('reads snapshots written before markers existed (no flags): every partition idles by its timeout', () => {
    const r = new PartitionWatermarks(0, 1_000);
    r.restore({ watermark: 2_000, partitions: [{ partition: 'p0', maxEventTime: 5_000, assigned: true }, { partition: 'p1', maxEventTime: 2_000, assigned: true }] }, 0);
    expect(r.advance(0)).toBe(2_000);
    expect(r.advance(1_000)).toBe(5_000);
  });
});
