/**
 * A batch of samples of one session, held column-wise in one Float64Array:
 * `[seq x n, t x n, channel 0 x n, ..., channel c-1 x n]`.
 *
 * Why this shape: it is the stored chunk payload byte for byte (little-endian float64,
 * see storage/chunk-codec.ts), so a batch is persisted without re-encoding, and there is
 * no per-sample object on the hot path. Float64 keeps `t` and every value exact
 * (docs/protocol.md, samples: exact round trip), and holds every seq up to 2^53-1 exactly.
 */
/** The lowest and highest t of some samples; for none, min is +Infinity and max -Infinity. */
export interface TRange {
  min: number;
  max: number;
}

/** The range of both. */
export function widen(a: TRange, b: TRange): TRange {
  return { min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) };
}

/** Where a decoder gets a batch's memory (the caller writes every value). */
export type BatchAllocator = (count: number, channelCount: number) => SampleBatch;

export class SampleBatch {
  /** Worked out on first use and kept: the writer asks for each chunk's and each session's (see tRange). */
  private tExtent: TRange | undefined;

  constructor(
    readonly count: number,
    readonly channelCount: number,
    readonly columns: Float64Array,
  ) {}

  /** A batch whose memory is not zeroed: the caller writes every value. */
  static allocate(count: number, channelCount: number): SampleBatch {
    // Not zeroed: a zeroed backing store per frame was the largest single cost of binary ingest
    // in a profile (docs/performance.md). Under 4 KiB, Buffer's pool serves it as a slice of a
    // shared slab, 8-byte aligned as Float64Array needs. Producers' frames come from their own
    // slabs instead (batch-slabs.ts); this serves slices, history reads and frames over 64 KiB.
    const values = count * (channelCount + 2);
    const memory = Buffer.allocUnsafe(values * 8);
    return new SampleBatch(count, channelCount, new Float64Array(memory.buffer, memory.byteOffset, values));
  }

  seq(index: number): number {
    return this.columns[index];
  }

  t(index: number): number {
    return this.columns[this.count + index];
  }

  value(channel: number, index: number): number {
    return this.columns[(channel + 2) * this.count + index];
  }

  get firstSeq(): number {
    return this.columns[0];
  }

  get lastSeq(): number {
    return this.columns[this.count - 1];
  }

  /**
   * The lowest and highest t of the batch, not its first and last: a producer's clock may
   * jump back, so t need not rise with seq. One pass over the t column, then kept, so a chunk's
   * bounds (stored with it) and its session's (firstT, lastT) cost that one pass between them.
   */
  get tRange(): TRange {
    if (this.tExtent === undefined) {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (let i = this.count, end = 2 * this.count; i < end; i++) {
        const t = this.columns[i];
        if (t < min) min = t;
        if (t > max) max = t;
      }
      this.tExtent = { min, max };
    }
    return this.tExtent;
  }

  get byteLength(): number {
    return this.columns.byteLength;
  }

  /** The samples at [start, end), copied into a batch of their own. */
  slice(start: number, end: number): SampleBatch {
    const count = end - start;
    const out = SampleBatch.allocate(count, this.channelCount);
    for (let column = 0; column < this.channelCount + 2; column++) {
      const from = column * this.count;
      out.columns.set(this.columns.subarray(from + start, from + end), column * count);
    }
    return out;
  }

  /** Index of the first sample whose seq is above `seq` (count when none is). */
  indexAfterSeq(seq: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.columns[mid] <= seq) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /** The samples with t in [fromT, toT), in their order; this batch itself when all of it is. */
  withinT(fromT: number, toT: number): SampleBatch {
    const { min, max } = this.tRange;
    if (min >= fromT && max < toT) return this;
    const picked: number[] = [];
    for (let i = 0; i < this.count; i++) {
      const t = this.columns[this.count + i];
      if (t >= fromT && t < toT) picked.push(i);
    }
    const out = SampleBatch.allocate(picked.length, this.channelCount);
    for (let column = 0; column < this.channelCount + 2; column++) {
      const from = column * this.count;
      const to = column * picked.length;
      for (let j = 0; j < picked.length; j++) out.columns[to + j] = this.columns[from + picked[j]];
    }
    return out;
  }

  /** The samples with seq in [fromSeq, toSeq]; this batch itself when all of it is. */
  range(fromSeq: number, toSeq: number): SampleBatch {
    const start = this.indexAfterSeq(fromSeq - 1);
    const end = this.indexAfterSeq(toSeq);
    return start === 0 && end === this.count ? this : this.slice(start, end);
  }
}
