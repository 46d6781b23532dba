/**
 * An aggregate answer from its bucket summaries: each fn's value, the empty buckets `fill`
 * makes, and the body in JSON or CSV (docs/reading-data.md, "Aggregates").
 *
 * A value is null where its bucket has no non-null value of the channel (every fn but
 * count), and where the result is not a finite float64 (a sum past 1.8e308, an interpolation
 * between such values): JSON has no Infinity, and a client should not be handed one as a number.
 */
import type { AggregateFn, Fill } from '../contract/aggregate-schemas.ts';
import type { BucketPlan } from './bucket-plan.ts';
import type { BucketSummary, ChannelSummary } from './bucket-summary.ts';

export function fnValue(channel: ChannelSummary, fn: AggregateFn): number | null {
  if (fn === 'count') return channel.count;
  if (channel.count === 0) return null;
  const value = fn === 'avg' ? channel.sum / channel.count : channel[fn];
  return Number.isFinite(value) ? value : null;
}

/** A bucket of the answer: `values[channel][fn]`, in the order asked. */
export interface AnswerBucket {
  t: number;
  count: number;
  values: (number | null)[][];
}

function answerBucket(summary: BucketSummary, fns: readonly AggregateFn[]): AnswerBucket {
  return { t: summary.t, count: summary.count, values: summary.channels.map((channel) => fns.map((fn) => fnValue(channel, fn))) };
}

function between(before: number | null, after: number | null, fraction: number): number | null {
  if (before === null || after === null) return null;
  const value = before + (after - before) * fraction;
  return Number.isFinite(value) ? value : null;
}

/** The empty bucket at `t` that `fill` makes from its non-empty neighbours (undefined at an edge). */
function filled(
  fill: Exclude<Fill, 'none'>,
  t: number,
  shape: readonly number[],
  before?: AnswerBucket,
  after?: AnswerBucket,
): AnswerBucket {
  const values = shape.map((fnCount, c) =>
    Array.from({ length: fnCount }, (_, f) => {
      if (fill === 'null' || before === undefined) return null;
      if (fill === 'previous') return before.values[c][f];
      if (after === undefined) return null;
      return between(before.values[c][f], after.values[c][f], (t - before.t) / (after.t - before.t));
    }),
  );
  return { t, count: 0, values };
}

/**
 * The buckets of the answer in ascending t, from the summaries of the plan's range: the
 * non-empty ones, and with a fill other than none every bucket of the range besides.
 */
export function answerBuckets(
  summaries: readonly BucketSummary[],
  plan: BucketPlan,
  channelCount: number,
  fns: readonly AggregateFn[],
  fill: Fill,
): AnswerBucket[] {
  const present = summaries.map((summary) => answerBucket(summary, fns));
  if (fill === 'none' || plan.firstIndex === null || plan.lastIndex === null) return present;
  const shape = Array.from({ length: channelCount }, () => fns.length);
  const out: AnswerBucket[] = [];
  let next = 0;
  for (let index = plan.firstIndex; index <= plan.lastIndex; index++) {
    // As bucketStart computes it, so that a bucket present is found at its own t.
    const t = index * plan.bucketMs + 0;
    if (next < present.length && present[next].t === t) out.push(present[next++]);
    else out.push(filled(fill, t, shape, present[next - 1], present[next]));
  }
  return out;
}
