import { describe, expect, it } from 'vitest';
import { ByteSlabs, SLAB_BYTES } from '../../src/engine/byte-slabs.ts';

describe('ByteSlabs', () => {
  it('gives buffers of the size asked for that never overlap, across slabs and beside buffers of their own', () => {
    const slabs = new ByteSlabs();
    const sizes = [1, 7, 8, 9, 4095, 4096, 16_384, 100_000, 3, ...Array.from({ length: 400 }, (_, i) => 1 + ((i * 977) % 9000))];
    const buffers = sizes.map((size) => slabs.take(size));
    buffers.forEach((b, i) => b.fill(i % 251));
    buffers.forEach((b, i) => {
      expect(b.every((byte) => byte === i % 251), `buffer ${i} was overwritten`).toBe(true);
    });
    expect(buffers.map((b) => b.length)).toEqual(sizes);
    // Small ones share slabs, 8-byte aligned; from a sixteenth of a slab up each has its own.
    expect(buffers[1]!.buffer).toBe(buffers[0]!.buffer);
    expect(buffers[1]!.byteOffset - buffers[0]!.byteOffset).toBe(8);
    expect(buffers[5]!.byteLength).toBe(buffers[5]!.buffer.byteLength);
    expect(buffers[0]!.buffer.byteLength).toBe(SLAB_BYTES);
  });
});
