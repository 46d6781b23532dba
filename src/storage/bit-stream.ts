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

export class BitWriter {
  private bytes: Uint8Array;
  private length = 0;
  /** Fewer than 8 bits waiting for their byte. */
  private pending = 0;
  private pendingBits = 0;

  constructor(capacity = 1024) {
    this.bytes = new Uint8Array(Math.max(16, capacity));
  }

  /** The low `width` bits of `value` (an unsigned 32-bit integer, 0 <= width <= 32). */
  write(value: number, width: number): void {
    if (width > 24) {
      this.write(value & 0xffffff, 24);
      this.write(value >>> 24, width - 24);
      return;
    }
    if (this.length + 4 > this.bytes.length) this.grow();
    this.pending = (this.pending | (value << this.pendingBits)) >>> 0;
    this.pendingBits += width;
    while (this.pendingBits >= 8) {
      this.bytes[this.length++] = this.pending & 0xff;
      this.pending >>>= 8;
      this.pendingBits -= 8;
    }
  }

  /** The low `width` bits of `value`, a non-negative safe integer (0 <= width <= 53). */
  writeWide(value: number, width: number): void {
    if (width <= 32) {
      this.write(value >>> 0, width);
    } else {
      this.write(value % twoTo32, 32);
      this.write(Math.floor(value / twoTo32), width - 32);
    }
  }

  /** The bits written, the last byte padded with zeros. */
  finish(): Buffer {
    if (this.pendingBits > 0) this.write(0, 8 - this.pendingBits);
    return Buffer.from(this.bytes.buffer, this.bytes.byteOffset, this.length);
  }

  private grow(): void {
    const bigger = new Uint8Array(this.bytes.length * 2);
    bigger.set(this.bytes.subarray(0, this.length));
    this.bytes = bigger;
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
