// snappyjs and lz4js ship no types. Only what codecs.ts uses is declared; codecs.ts checks results.

declare module 'snappyjs' {
  /** A raw Snappy block (no framing). */
  export function compress(uncompressed: Uint8Array): Uint8Array;
  /** Throws when the bitstream is invalid or declares more than `maxLength` bytes. */
  export function uncompress(compressed: Uint8Array, maxLength?: number): Uint8Array;
}

declare module 'lz4js' {
  /** The most bytes compressBlock can write for `length` input bytes. */
  export function compressBound(length: number): number;
  /**
   * Compresses `src[start, start + length)` as one raw LZ4 block into `dst` (from 0), with
   * `hashTable` (65536 entries, zeroed) as match finder state. Returns the compressed length; 0
   * when it found nothing to compress.
   */
  export function compressBlock(src: Uint8Array, dst: Uint8Array, start: number, length: number, hashTable: Uint32Array): number;
}

declare module 'lz4js/xxh32.js' {
  /** XXH32 of `src[index, index + length)`, unsigned. */
  export function hash(seed: number, src: Uint8Array, index: number, length: number): number;
}
