/**
 * Small buffers carved out of shared slabs. Buffer.allocUnsafe takes a buffer of up to 4 KiB from
 * Node's shared pool, which is only 8 KiB, so writing messages of a few KB made a new pool (an
 * ArrayBuffer, with a backing store for the garbage collector to track and free) every few
 * messages: 1.4% of a Kafka drain's main thread in `createPool` for records, and 5% of the native
 * change capture drain for envelope bytes. Carving 400,000 records of about 1 KB took 67-84 ms
 * from slabs against 125-128 ms from the pool (garbage collection included); larger slabs were no
 * faster (256 KiB: 67-86 ms, 1 MiB: 82-91 ms), and 64 KiB stays below the 128 KiB from which
 * malloc maps fresh pages for each. A slab is freed once no buffer carved from it is referenced.
 */
export const SLAB_BYTES = 64 * 1024;
/** Larger buffers are allocated on their own, so that one does not waste the rest of a slab. */
const OWN_BUFFER_FROM = SLAB_BYTES / 16;

export class ByteSlabs {
  private slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  private used = 0;

  /** A buffer of `size` bytes, its contents undefined. */
  take(size: number): Buffer {
    if (size >= OWN_BUFFER_FROM) return Buffer.allocUnsafeSlow(size);
    if (this.used + size > SLAB_BYTES) {
      this.slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
      this.used = 0;
    }
    const buf = this.slab.subarray(this.used, this.used + size);
    // The next buffer starts 8-byte aligned, as in Node's own pool.
    this.used += (size + 7) & ~7;
    return buf;
  }
}
