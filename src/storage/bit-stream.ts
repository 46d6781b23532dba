/**
 * Bits written and read least significant first, for the compressed chunk layout
 * (chunk-compression.ts). The reader refuses to read past its end with a CorruptChunkError, so
 * a payload cut short or mutated ends in that error, never in garbage or a loop.
 */

/** A stored chunk that cannot be what the writer or the compressor stored. */
export class CorruptChunkError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CorruptChunkError';
  }
}

const twoTo32 = 4294967296;

/** The number of bits `value` (a non-negative safe integer) needs. */
export function bitWidth(value: number): number {
  return value < twoTo32 ? 32 - Math.clz32(value) : 64 - Math.clz32(Math.floor(value / twoTo32));
}

/**
 * Fills 32-bit words, whose bytes on a little-endian host (which Wavehouse requires, app.ts)
 * are the least-significant-first bytes the reader takes: a word a store, where writing byte by
 * byte took a loop per value and two calls for any wider than 24 bits (the writer was a fifth
 * of the compression job's main thread).
 */
export class BitWriter {
  private words: Uint32Array;
  private length = 0;
  /** Fewer than 32 bits waiting for their word. */
  private pending = 0;
  private pendingBits = 0;

  constructor(capacityBytes = 1024) {
    this.words = new Uint32Array(Math.max(4, Math.ceil(capacityBytes / 4)));
  }

  /** `value`, an unsigned integer below 2^width (0 <= width <= 32). */
  write(value: number, width: number): void {
    const used = this.pendingBits;
    this.pending |= value << used;
    if (used + width < 32) {
      this.pendingBits = used + width;
      return;
    }
    if (this.length === this.words.length) this.grow();
    this.words[this.length++] = this.pending;
    // A shift by 32 is a shift by 0 in JavaScript: with none pending, nothing of value is left.
    this.pending = used === 0 ? 0 : value >>> (32 - used);
    this.pendingBits = used + width - 32;
  }

  /** `value`, a non-negative safe integer below 2^width (0 <= width <= 53). */
  writeWide(value: number, width: number): void {
    if (width <= 32) {
      this.write(value, width);
    } else {
      this.write(value % twoTo32, 32);
      this.write(Math.floor(value / twoTo32), width - 32);
    }
  }

  /** The bits written, the last byte padded with zeros. */
  finish(): Buffer {
    if (this.length === this.words.length) this.grow();
    this.words[this.length] = this.pending;
    const bytes = this.length * 4 + Math.ceil(this.pendingBits / 8);
    return Buffer.from(this.words.buffer, this.words.byteOffset, bytes);
  }

  private grow(): void {
    const bigger = new Uint32Array(this.words.length * 2);
    bigger.set(this.words);
    this.words = bigger;
  }
}

export class BitReader {
  private at = 0;
  private pending = 0;
  private pendingBits = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly where: string,
  ) {}

  corrupt(why: string): CorruptChunkError {
    return new CorruptChunkError(`corrupt chunk (${this.where}): ${why}`);
  }

  /** `width` bits (0 <= width <= 32) as an unsigned integer. */
  read(width: number): number {
    if (width > 24) return this.read(24) + this.read(width - 24) * 0x1000000;
    while (this.pendingBits < width) {
      if (this.at >= this.bytes.length) throw this.corrupt('it ends too soon');
      this.pending = (this.pending | (this.bytes[this.at++] << this.pendingBits)) >>> 0;
      this.pendingBits += 8;
    }
    const value = width === 0 ? 0 : (this.pending & (0xffffffff >>> (32 - width))) >>> 0;
    this.pending >>>= width;
    this.pendingBits -= width;
    return value;
  }

  /** `width` bits (0 <= width <= 53) as a non-negative integer. */
  readWide(width: number): number {
    return width <= 32 ? this.read(width) : this.read(32) + this.read(width - 32) * twoTo32;
  }

  /** Refuses what follows the last field but the zero bits padding its byte. */
  end(): void {
    if (this.at !== this.bytes.length || this.pending !== 0) throw this.corrupt('bytes follow its last column');
  }
}
