/**
 * An aggregate answer from its bucket summaries: each fn's value, the empty buckets `fill`
 * makes, in columns the body is written from (aggregate-text.ts; docs/reading-data.md,
 * "Aggregates").
 *
 * A value is null where its bucket has no non-null value of the channel (every fn but
 * count), and where the result is not a finite float64 (a sum past 1.8e308, an interpolation
 * between such values): JSON has no Infinity, and a client should not be handed one as a number.
 * In the columns a null is NaN, which no value can be.
 */
import type { AggregateFn, Fill } from '../contract/aggregate-schemas.ts';
import type { BucketColumns } from './bucket-columns.ts';
import type { BucketPlan } from './bucket-plan.ts';

/** The buckets of the answer in ascending t. */
export interface Answer {
  length: number;
  t: Float64Array;
  count: Float64Array;
  /** Bucket r, channel c, fn f at (r * channels + c) * fns + f, in the order asked; NaN for null. */
  values: Float64Array;
}

/** Rows from..to (excluded) of `summaries` as answer buckets. */
function presentOf(summaries: BucketColumns, from: number, to: number, fns: readonly AggregateFn[]): Answer {
  const length = to - from;
  const cells = summaries.channels * fns.length;
  const values = new Float64Array(length * cells);
  for (let r = 0; r < length; r++) {
    for (let c = 0; c < summaries.channels; c++) {
      for (let f = 0; f < fns.length; f++) values[r * cells + c * fns.length + f] = summaries.value(from + r, c, fns[f]);
    }
  }
  return { length, t: summaries.t.slice(from, to), count: summaries.count.slice(from, to), values };
}

/**
 * Fills bucket `r` of `out` (at `t`, count 0) as `fill` makes it from its non-empty neighbours,
 * buckets `before` and `after` of `present` (-1 and present.length at an edge).
 */
function fillBucket(
  out: Answer,
  r: number,
  cells: number,
  fill: Exclude<Fill, 'none'>,
  present: Answer,
  before: number,
  after: number,
): void {
  const at = r * cells;
  if (fill === 'null' || before < 0) {
    out.values.fill(Number.NaN, at, at + cells);
  } else if (fill === 'previous') {
    out.values.set(present.values.subarray(before * cells, (before + 1) * cells), at);
  } else if (after === present.length) {
    out.values.fill(Number.NaN, at, at + cells);
  } else {
    const fraction = (out.t[r] - present.t[before]) / (present.t[after] - present.t[before]);
    for (let k = 0; k < cells; k++) {
      const v0 = present.values[before * cells + k];
      const v1 = present.values[after * cells + k];
      // NaN (null) at either end stays NaN, as does a result past the float64 range.
      const value = v0 + (v1 - v0) * fraction;
      out.values[at + k] = Number.isFinite(value) ? value : Number.NaN;
    }
  }
}

/**
 * The answer from rows from..to (excluded) of `summaries`, the buckets of the plan's range
 * holding samples, in ascending t: those buckets, and with a fill other than none every bucket
 * of the range besides.
 */
export function answerOf(
  summaries: BucketColumns,
  rows: { from: number; to: number },
  plan: BucketPlan,
  fns: readonly AggregateFn[],
  fill: Fill,
): Answer {
  const present = presentOf(summaries, rows.from, rows.to, fns);
  if (fill === 'none' || plan.firstIndex === null || plan.lastIndex === null) return present;
  const cells = summaries.channels * fns.length;
  const length = plan.lastIndex - plan.firstIndex + 1;
  const out: Answer = { length, t: new Float64Array(length), count: new Float64Array(length), values: new Float64Array(length * cells) };
  let next = 0;
  for (let r = 0; r < length; r++) {
    // As bucketStart computes it, so that a bucket present is found at its own t.
    const t = (plan.firstIndex + r) * plan.bucketMs + 0;
    out.t[r] = t;
    if (next < present.length && present.t[next] === t) {
      out.count[r] = present.count[next];
      out.values.set(present.values.subarray(next * cells, (next + 1) * cells), r * cells);
      next++;
    } else fillBucket(out, r, cells, fill, present, next - 1, next);
  }
  return out;
}
