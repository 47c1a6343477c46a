import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import { crc32c, crc32cSliced, kafkajsCrc32c, nativeCrc32c } from '../../../src/io/kafka/crc32c.ts';
import { mulberry32 } from '../../../src/engine/seeded-random.ts';

describe.each([
  ['crc32c (as installed)', crc32c],
  ['crc32cSliced (JavaScript)', crc32cSliced],
])('%s', (_name, checksum) => {
  it('gives the check value of CRC-32C and of RFC 3720\'s test patterns', () => {
    expect(checksum(Buffer.from('123456789'))).toBe(0xe3069283);
    expect(checksum(Buffer.alloc(32, 0))).toBe(0x8a9136aa);
    expect(checksum(Buffer.alloc(32, 0xff))).toBe(0x62a8ab43);
    expect(checksum(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe(0x46dd794e);
    expect(checksum(Buffer.alloc(0))).toBe(0);
  });

  it('agrees with kafkajs\'s own on random buffers of every length up to 300, and on long ones at odd offsets', () => {
    const next = mulberry32(7);
    const random = (n: number) => Buffer.from(Array.from({ length: n }, () => Math.floor(next() * 256)));
    for (let n = 0; n <= 300; n++) {
      const b = random(n);
      expect(checksum(b)).toBe(kafkajsCrc32c(b));
    }
    const long = random(100_003);
    for (const start of [0, 1, 3, 7]) expect(checksum(long.subarray(start))).toBe(kafkajsCrc32c(long.subarray(start)));
    // A Uint8Array that is not a Buffer, viewing part of a larger one.
    const view = new Uint8Array(long.buffer, long.byteOffset + 5, 1000);
    expect(checksum(view)).toBe(kafkajsCrc32c(Buffer.from(view)));
  });

  it('continues from a previous checksum: parts in turn give the checksum of their whole', () => {
    expect(checksum(Buffer.from('6789'), checksum(Buffer.from('12345')))).toBe(0xe3069283);
    const next = mulberry32(9);
    const whole = Buffer.from(Array.from({ length: 5_000 }, () => Math.floor(next() * 256)));
    for (const cuts of [[0], [1], [7, 8], [100, 101, 4_096], [2_500, 4_999, 5_000]]) {
      let crc = 0;
      let from = 0;
      for (const cut of [...cuts, whole.length]) {
        crc = checksum(whole.subarray(from, cut), crc);
        from = cut;
      }
      expect([cuts, crc]).toEqual([cuts, kafkajsCrc32c(whole)]);
    }
  });
});

describe('crc32c', () => {
  // @node-rs/crc32 ships a prebuilt binary for this platform (the CI machines' too): a failure here
  // means sluice silently fell back to the 9 times slower JavaScript.
  it.runIf(process.platform === 'linux' && process.arch === 'x64')('runs in hardware on linux x64', () => {
    expect(nativeCrc32c).toBeTypeOf('function');
  });

  it('is what kafkajs\'s record batch encoder requires', () => {
    const require = createRequire(import.meta.url);
    const installed = require('kafkajs/src/protocol/recordBatch/crc32C/index.js') as (b: Buffer) => number;
    expect(installed).not.toBe(kafkajsCrc32c);
    expect(installed(Buffer.from('123456789'))).toBe(0xe3069283);
  });
});
