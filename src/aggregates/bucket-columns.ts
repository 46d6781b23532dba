/**
 * Bucket summaries of one width in columns (bucket-summary.ts's fields, the same merge rules):
 * what a SummarySource answers, folded from stored roll-up columns or raw samples, and what an
 * answer is written from. Every field of every bucket is a float64 of one Float64Array, so that
 * folding an hour's 6,000 roll-up buckets into 1,000 makes no object per bucket: objects per
 * bucket and channel, and collecting them, were half of an aggregate's time (docs/performance.md).
 */
import type { AggregateFn } from '../contract/aggregate-schemas.ts';

/** A channel's fields in a row, in this order: ChannelSummary's. */
export const fieldCount = 8;
export const countField = 0;
export const sumField = 1;
export const minField = 2;
export const maxField = 3;
export const firstSeqField = 4;
export const firstField = 5;
export const lastSeqField = 6;
export const lastField = 7;

const emptyFields = [0, 0, Infinity, -Infinity, Infinity, Number.NaN, -Infinity, Number.NaN];

export class BucketColumns {
  length = 0;
  /** Each row's aligned start. */
  t: Float64Array;
  /** Each row's samples, nulls included. */
  count: Float64Array;
  /** Row r, channel c, field f at (r * channels + c) * fieldCount + f. */
  fields: Float64Array;
  private readonly rows = new Map<number, number>();
  private ascending = true;

  constructor(
    readonly bucketMs: number,
    readonly channels: number,
    capacity = 64,
  ) {
    this.t = new Float64Array(capacity);
    this.count = new Float64Array(capacity);
    this.fields = new Float64Array(capacity * channels * fieldCount);
  }

  /** The row of the bucket starting at `t` (aligned to bucketMs), added empty if there is none. */
  rowAt(t: number): number {
    const last = this.length - 1;
    if (last >= 0 && this.t[last] === t) return last;
    const found = this.rows.get(t);
    if (found !== undefined) return found;
    if (this.length === this.t.length) this.grow();
    const row = this.length++;
    if (row > 0 && t < this.t[row - 1]) this.ascending = false;
    this.t[row] = t;
    this.count[row] = 0;
    const width = this.channels * fieldCount;
    for (let k = 0; k < width; k++) this.fields[row * width + k] = emptyFields[k % fieldCount];
    this.rows.set(t, row);
    return row;
  }

  /** Counts a value at `seq` into channel `c` of `row`; a null (NaN) is not counted (addValue). */
  addValue(row: number, c: number, seq: number, value: number): void {
    if (Number.isNaN(value)) return;
    const f = this.fields;
    const at = (row * this.channels + c) * fieldCount;
    f[at]++;
    f[at + sumField] += value;
    if (value < f[at + minField]) f[at + minField] = value;
    if (value > f[at + maxField]) f[at + maxField] = value;
    if (seq < f[at + firstSeqField]) {
      f[at + firstSeqField] = seq;
      f[at + firstField] = value;
    }
    if (seq > f[at + lastSeqField]) {
      f[at + lastSeqField] = seq;
      f[at + lastField] = value;
    }
  }

  /** Folds the summary of a channel of other samples, its fields at `at` in `source`, into channel `c` of `row` (mergeChannel). */
  mergeFields(row: number, c: number, source: Float64Array, at: number, stride: number): void {
    const count = source[at];
    if (count === 0) return;
    const f = this.fields;
    const to = (row * this.channels + c) * fieldCount;
    f[to] += count;
    f[to + sumField] += source[at + stride];
    const min = source[at + minField * stride];
    const max = source[at + maxField * stride];
    if (min < f[to + minField]) f[to + minField] = min;
    if (max > f[to + maxField]) f[to + maxField] = max;
    const firstSeq = source[at + firstSeqField * stride];
    const lastSeq = source[at + lastSeqField * stride];
    if (firstSeq < f[to + firstSeqField]) {
      f[to + firstSeqField] = firstSeq;
      f[to + firstField] = source[at + firstField * stride];
    }
    if (lastSeq > f[to + lastSeqField]) {
      f[to + lastSeqField] = lastSeq;
      f[to + lastField] = source[at + lastField * stride];
    }
  }

  /** Folds row `fromRow` of `source` (the same channels) into the row of its t here. */
  mergeRow(source: BucketColumns, fromRow: number): void {
    const row = this.rowAt(source.t[fromRow]);
    this.count[row] += source.count[fromRow];
    for (let c = 0; c < this.channels; c++) this.mergeFields(row, c, source.fields, (fromRow * source.channels + c) * fieldCount, 1);
  }

  /** These buckets in ascending t: this, unless rows were added out of order. */
  sorted(): BucketColumns {
    if (this.ascending) return this;
    const order = Array.from({ length: this.length }, (_, row) => row).sort((a, b) => this.t[a] - this.t[b]);
    const out = new BucketColumns(this.bucketMs, this.channels, Math.max(1, this.length));
    const width = this.channels * fieldCount;
    order.forEach((row, k) => {
      out.t[k] = this.t[row];
      out.count[k] = this.count[row];
      out.fields.set(this.fields.subarray(row * width, (row + 1) * width), k * width);
      out.rows.set(this.t[row], k);
    });
    out.length = this.length;
    return out;
  }

  /** The value of `fn` for channel `c` of `row`, as fnValue (aggregate-body.ts) defines it: NaN for null. */
  value(row: number, c: number, fn: AggregateFn): number {
    const at = (row * this.channels + c) * fieldCount;
    const count = this.fields[at];
    if (fn === 'count') return count;
    if (count === 0) return Number.NaN;
    const value = fn === 'avg' ? this.fields[at + sumField] / count : this.fields[at + fieldOf[fn]];
    return Number.isFinite(value) ? value : Number.NaN;
  }

  private grow(): void {
    const capacity = this.t.length * 2;
    const t = new Float64Array(capacity);
    const count = new Float64Array(capacity);
    const fields = new Float64Array(capacity * this.channels * fieldCount);
    t.set(this.t);
    count.set(this.count);
    fields.set(this.fields);
    this.t = t;
    this.count = count;
    this.fields = fields;
  }
}

const fieldOf: Record<Exclude<AggregateFn, 'count' | 'avg'>, number> = {
  sum: sumField,
  min: minField,
  max: maxField,
  first: firstField,
  last: lastField,
};
