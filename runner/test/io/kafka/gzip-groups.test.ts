import { promisify } from 'node:util';
import { gunzip, gunzipSync, gzipSync, unzip, deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { GROUP_BELOW, declaredGzipLengths, groupedGzipInflate, type GzipInflater } from '../../../src/io/kafka/gzip-groups.ts';

/** Text of `length` bytes that compresses some (a small batch of JSON events looks like this). */
function text(seed: number, length: number): Buffer {
  let s = '';
  for (let i = 0; s.length < length; i++) s += `{"id":${seed * 1000 + i},"v":"${((seed * 7919 + i * 104729) % 99991).toString(36)}"}\n`;
  return Buffer.from(s.slice(0, length));
}

/** zlib's calls, counted: the inflater codecs.ts gives. */
function countingInflater() {
  const calls = { alone: 0, members: 0 };
  const inflater: GzipInflater = {
    alone: (member) => {
      calls.alone++;
      return promisify(unzip)(member);
    },
    members: (joined) => {
      calls.members++;
      return promisify(gunzip)(joined);
    },
  };
  return { calls, inflate: groupedGzipInflate(inflater) };
}

/** What each buffer inflates to on its own, synchronously, or the error it throws. */
function aloneSync(bytes: Buffer): { bytes: string } | { error: string } {
  try {
    return { bytes: gunzipSync(bytes).toString('hex') };
  } catch (err) {
    return { error: String(err) };
  }
}

async function settled(results: Promise<Buffer>[]) {
  return Promise.all(results.map((p) => p.then((b) => ({ bytes: b.toString('hex') }), (err: unknown) => ({ error: String(err) }))));
}

describe('declaredGzipLengths', () => {
  it('reads each member\'s inflated length from its trailer', () => {
    const inputs = [text(1, 5000), Buffer.alloc(0), text(2, 70_000)];
    expect(declaredGzipLengths(inputs.map((b) => gzipSync(b)))).toEqual([5000, 0, 70_000]);
  });

  it('knows no length for what is not a gzip member: a zlib stream, garbage, a cut header', () => {
    const member = gzipSync(text(3, 300));
    expect(declaredGzipLengths([member, deflateSync(text(3, 300))])).toBeUndefined();
    expect(declaredGzipLengths([Buffer.from('definitely not gzip at all')])).toBeUndefined();
    expect(declaredGzipLengths([member.subarray(0, 17)])).toBeUndefined();
  });
});

describe('groupedGzipInflate', () => {
  it('inflates small batches asked for together in one call, each to exactly what it inflates to alone', async () => {
    const { calls, inflate } = countingInflater();
    const batches = [1, 2, 3, 4, 5, 6].map((seed) => gzipSync(text(seed, 200 + seed * 700)));
    const results = await settled(batches.map((b) => inflate(b)));
    expect(results).toEqual(batches.map(aloneSync));
    expect(calls).toEqual({ alone: 0, members: 1 });
  });

  it('groups what is asked for in one turn of the event loop, promise callbacks included, and no more', async () => {
    const { calls, inflate } = countingInflater();
    const [a, b, c] = [7, 8, 9].map((seed) => gzipSync(text(seed, 1000)));
    // b is asked for in a promise callback of the same turn (fetched-batches.ts starts batches so), c in a later turn.
    const first = [inflate(a!), Promise.resolve().then(() => inflate(b!))];
    await Promise.all(first);
    const second = inflate(c!);
    expect((await second).toString()).toBe(text(9, 1000).toString());
    expect(calls).toEqual({ alone: 1, members: 1 });
  });

  it('inflates a large batch alone', async () => {
    const { calls, inflate } = countingInflater();
    let x = 1;
    // Noise (a linear congruential generator's high bytes) hardly compresses.
    const large = gzipSync(Buffer.from(Array.from({ length: GROUP_BELOW * 2 }, () => (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24)));
    expect(large.length).toBeGreaterThanOrEqual(GROUP_BELOW);
    const small = gzipSync(text(10, 500));
    const results = await settled([inflate(large), inflate(small)]);
    expect(results).toEqual([aloneSync(large), aloneSync(small)]);
    expect(calls).toEqual({ alone: 2, members: 0 });
  });

  it('gives a corrupt batch its own error and the others their bytes', async () => {
    const { calls, inflate } = countingInflater();
    const batches = [11, 12, 13].map((seed) => gzipSync(text(seed, 3000)));
    const corrupt = Buffer.from(batches[1]!);
    corrupt[20] = corrupt[20]! ^ 0xff;
    const group = [batches[0]!, corrupt, batches[2]!];
    const results = await settled(group.map((b) => inflate(b)));
    expect(results).toEqual(group.map(aloneSync));
    expect(results[1]).toHaveProperty('error');
    expect(calls).toEqual({ alone: 3, members: 1 });
  });

  it('does not cut by the trailers when a batch is two gzip members (its trailer counts only the last)', async () => {
    const { calls, inflate } = countingInflater();
    const twoMembers = Buffer.concat([gzipSync(text(14, 900)), gzipSync(text(15, 400))]);
    const group = [gzipSync(text(16, 600)), twoMembers, gzipSync(text(17, 800))];
    const results = await settled(group.map((b) => inflate(b)));
    expect(results).toEqual(group.map(aloneSync));
    expect(Buffer.from((results[1] as { bytes: string }).bytes, 'hex').length).toBe(1300);
    expect(calls).toEqual({ alone: 3, members: 1 });
  });

  it('inflates alone what does not look like gzip (a zlib stream, which unzip also reads)', async () => {
    const { calls, inflate } = countingInflater();
    const zlibStream = deflateSync(text(18, 700));
    const results = await settled([inflate(gzipSync(text(19, 700))), inflate(zlibStream)]);
    expect(results.map((r) => Buffer.from((r as { bytes: string }).bytes, 'hex').toString())).toEqual([text(19, 700).toString(), text(18, 700).toString()]);
    expect(calls).toEqual({ alone: 2, members: 0 });
  });
});
