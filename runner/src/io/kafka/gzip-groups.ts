/**
 * Small gzip batches inflated together, in one call to zlib. Asynchronous zlib costs the main thread
 * two round trips to the thread pool per call (the data, then the stream's flush), and on a virtual
 * machine each round trip's thread wake-ups cost more than the inflating itself: 230 µs of the main
 * thread for a batch of ten Debezium events, against 70 µs inflating it synchronously. A topic
 * written at a steady rate holds such batches, and sluice read them one call each.
 *
 * gzip allows members one after another in a stream, and zlib's gunzip reads them all. So batches
 * whose decompression is asked for in the same turn of the event loop (fetched-batches.ts starts
 * several at once) are joined and inflated in one call; each batch's output is then cut from the
 * whole by the length its gzip trailer declares (ISIZE). That is exact, not a guess: a batch inflates
 * to at least its last member's ISIZE, so only when every batch is one member do the declared
 * lengths add up to what came out; when they do not (or the call fails) every batch of the group is
 * inflated on its own, and each gets the bytes or the error it would have got alone.
 */

/** gzip's two magic bytes and its one compression method (deflate): how every gzip member starts. */
const GZIP_ID1 = 0x1f;
const GZIP_ID2 = 0x8b;
const GZIP_DEFLATE = 0x08;
/** A member's fixed header (10 bytes) and trailer (CRC32 and ISIZE, 8 bytes). */
const GZIP_MIN_MEMBER = 18;

/** Batches from this many compressed bytes up are inflated alone (a large batch keeps the thread pool busy on its own). */
export const GROUP_BELOW = 16 * 1024;
/** The most a group may declare it inflates to; more (or a corrupt trailer claiming more) and its batches go alone. */
export const MAX_GROUP_OUTPUT = 32 * 1024 * 1024;

/**
 * The inflated length each buffer's gzip trailer declares, or undefined when a buffer does not look
 * like a gzip member (the length is then unknown, and the buffer is inflated alone).
 */
export function declaredGzipLengths(members: readonly Uint8Array[]): number[] | undefined {
  const lengths: number[] = [];
  for (const m of members) {
    if (m.length < GZIP_MIN_MEMBER || m[0] !== GZIP_ID1 || m[1] !== GZIP_ID2 || m[2] !== GZIP_DEFLATE) return undefined;
    const at = m.length - 4;
    // ISIZE: the input's length modulo 2^32, little-endian.
    lengths.push((m[at]! | (m[at + 1]! << 8) | (m[at + 2]! << 16) | (m[at + 3]! << 24)) >>> 0);
  }
  return lengths;
}

/** The two zlib calls a group needs. */
export interface GzipInflater {
  /** Inflates one batch as a lone call would (kafkajs's codec: zlib's unzip). */
  alone(member: Buffer): Promise<Buffer>;
  /** Inflates gzip members one after another (zlib's gunzip), into an output of about `outputBytes`. */
  members(joined: Buffer, outputBytes: number): Promise<Buffer>;
}

interface PendingBatch {
  bytes: Buffer;
  resolve(inflated: Buffer): void;
  reject(err: unknown): void;
}

/**
 * A gzip `decompress(buffer)` that groups small batches asked for in the same turn of the event loop.
 * Each batch's result is a view of the group's output, which stays in memory while any of the
 * group's records does: at most what 64 KiB of compressed batches inflate to (fetched-batches.ts).
 */
export function groupedGzipInflate(inflater: GzipInflater): (bytes: Buffer) => Promise<Buffer> {
  let pending: PendingBatch[] = [];

  const alone = (batch: PendingBatch): void => {
    inflater.alone(batch.bytes).then(batch.resolve, batch.reject);
  };

  const inflateGroup = (): void => {
    const group = pending;
    pending = [];
    const lengths = group.length > 1 ? declaredGzipLengths(group.map((b) => b.bytes)) : undefined;
    const total = lengths?.reduce((sum, n) => sum + n, 0) ?? 0;
    if (lengths === undefined || total > MAX_GROUP_OUTPUT) {
      group.forEach(alone);
      return;
    }
    inflater
      .members(Buffer.concat(group.map((b) => b.bytes)), total)
      .then((out) => {
        if (out.length !== total) throw new Error('gzip members inflated to other lengths than their trailers declare');
        let at = 0;
        group.forEach((batch, i) => {
          batch.resolve(out.subarray(at, (at += lengths[i]!)));
        });
      })
      // Any failure: every batch alone, so that each gets exactly its own bytes or its own error.
      .catch(() => group.forEach(alone));
  };

  return (bytes) => {
    if (bytes.length >= GROUP_BELOW) return inflater.alone(bytes);
    return new Promise<Buffer>((resolve, reject) => {
      // After the code that asked (and the promise callbacks it set off) has run: they may ask for more.
      if (pending.length === 0) process.nextTick(inflateGroup);
      pending.push({ bytes, resolve, reject });
    });
  };
}
