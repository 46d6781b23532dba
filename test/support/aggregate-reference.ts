/**
 * The aggregate answer as it was computed before it was columnar (bucket objects, a String() per
 * value): the reference the columnar fold and writers must give exactly the same text as, and the
 * conversions between the two forms the tests compare in.
 */
import type { Answer } from '../../src/aggregates/aggregate-body.ts';
import { BucketColumns, fieldCount } from '../../src/aggregates/bucket-columns.ts';
import type { BucketPlan } from '../../src/aggregates/bucket-plan.ts';
import type { BucketSummary, ChannelSummary } from '../../src/aggregates/bucket-summary.ts';
import type { AggregateFn, Fill } from '../../src/contract/aggregate-schemas.ts';

export function fnValue(channel: ChannelSummary, fn: AggregateFn): number | null {
  if (fn === 'count') return channel.count;
  if (channel.count === 0) return null;
  const value = fn === 'avg' ? channel.sum / channel.count : channel[fn];
  return Number.isFinite(value) ? value : null;
}

export interface AnswerBucket {
  t: number;
  count: number;
  values: (number | null)[][];
}

function between(before: number | null, after: number | null, fraction: number): number | null {
  if (before === null || after === null) return null;
  const value = before + (after - before) * fraction;
  return Number.isFinite(value) ? value : null;
}

export function answerBuckets(
  summaries: readonly BucketSummary[],
  plan: BucketPlan,
  channelCount: number,
  fns: readonly AggregateFn[],
  fill: Fill,
): AnswerBucket[] {
  const present = summaries.map((s) => ({ t: s.t, count: s.count, values: s.channels.map((c) => fns.map((fn) => fnValue(c, fn))) }));
  if (fill === 'none' || plan.firstIndex === null || plan.lastIndex === null) return present;
  const out: AnswerBucket[] = [];
  let next = 0;
  for (let index = plan.firstIndex; index <= plan.lastIndex; index++) {
    const t = index * plan.bucketMs + 0;
    if (next < present.length && present[next].t === t) {
      out.push(present[next++]);
      continue;
    }
    const before = present[next - 1];
    const after = present[next];
    const values = Array.from({ length: channelCount }, (_, c) =>
      fns.map((_fn, f) => {
        if (fill === 'null' || before === undefined) return null;
        if (fill === 'previous') return before.values[c][f];
        if (after === undefined) return null;
        return between(before.values[c][f], after.values[c][f], (t - before.t) / (after.t - before.t));
      }),
    );
    out.push({ t, count: 0, values });
  }
  return out;
}

export interface ReferenceHeader {
  sessionId: string;
  bucketMs: number;
  channels: readonly string[];
  fns: readonly AggregateFn[];
}

const text = (value: number | null) => (value === null ? 'null' : String(value));

export function referenceJson(header: ReferenceHeader, buckets: readonly AnswerBucket[]): string {
  const channelKeys = header.channels.map((name) => `,${JSON.stringify(name)}:{`);
  const fnKeys = header.fns.map((fn, f) => `${f === 0 ? '' : ','}"${fn}":`);
  const lines = buckets.map((bucket) => {
    let line = `{"t":${text(bucket.t)},"count":${bucket.count}`;
    bucket.values.forEach((values, c) => {
      line += channelKeys[c];
      values.forEach((value, f) => {
        line += fnKeys[f] + text(value);
      });
      line += '}';
    });
    return `${line}}`;
  });
  return `{"sessionId":${JSON.stringify(header.sessionId)},"bucketMs":${header.bucketMs},"buckets":[${lines.join(',')}]}`;
}

export function referenceCsv(header: ReferenceHeader, buckets: readonly AnswerBucket[]): string {
  const columns = header.channels.flatMap((name) => header.fns.map((fn) => `${name}_${fn}`));
  const lines = buckets.map((bucket) => {
    const fields = bucket.values.flatMap((values) => values.map((value) => (value === null ? '' : String(value))));
    return `${text(bucket.t)},${bucket.count}${fields.length > 0 ? `,${fields.join(',')}` : ''}\n`;
  });
  return `${['t', 'count', ...columns].join(',')}\n${lines.join('')}`;
}

/** Summaries (ascending t) in columns. */
export function columnsOf(summaries: readonly BucketSummary[], bucketMs: number, channels: number): BucketColumns {
  const columns = new BucketColumns(bucketMs, channels);
  for (const summary of summaries) {
    const row = columns.rowAt(summary.t);
    columns.count[row] += summary.count;
    summary.channels.forEach((channel, c) => {
      const fields = [channel.count, channel.sum, channel.min, channel.max, channel.firstSeq, channel.first, channel.lastSeq, channel.last];
      columns.mergeFields(row, c, Float64Array.from(fields), 0, 1);
    });
  }
  return columns;
}

/** Columns as summaries, row by row. */
export function summariesOf(columns: BucketColumns): BucketSummary[] {
  return Array.from({ length: columns.length }, (_, row) => ({
    t: columns.t[row],
    count: columns.count[row],
    channels: Array.from({ length: columns.channels }, (_c, c) => {
      const at = (row * columns.channels + c) * fieldCount;
      const [count, sum, min, max, firstSeq, first, lastSeq, last] = columns.fields.subarray(at, at + fieldCount);
      return { count, sum, min, max, firstSeq, first, lastSeq, last };
    }),
  }));
}

/** An answer's buckets as objects, null for NaN. */
export function bucketsOfAnswer(answer: Answer, channels: number, fns: number): AnswerBucket[] {
  return Array.from({ length: answer.length }, (_, r) => ({
    t: answer.t[r],
    count: answer.count[r],
    values: Array.from({ length: channels }, (_c, c) =>
      Array.from({ length: fns }, (_f, f) => {
        const value = answer.values[(r * channels + c) * fns + f];
        return Number.isNaN(value) ? null : value;
      }),
    ),
  }));
}
