/**
 * Roll-ups as the contract defines them, computed straight from samples (no merging): the
 * reference the writer's roll-ups are checked against. Sums are added in seq order, so they
 * are compared within a float tolerance; every other field exactly.
 */
import assert from 'node:assert/strict';
import { BucketColumns } from '../../src/aggregates/bucket-columns.ts';
import { type BucketSummary, bucketStart } from '../../src/aggregates/bucket-summary.ts';
import { foldParts, type RollupPartRead } from '../../src/storage/rollup-store.ts';
import { summariesOf } from './aggregate-reference.ts';

/** A sample with its channel values in order; NaN is a null. */
export interface PlainSample {
  seq: number;
  t: number;
  values: number[];
}

export function referenceBuckets(samples: readonly PlainSample[], channels: number, resolutionMs: number): BucketSummary[] {
  const byBucket = new Map<number, PlainSample[]>();
  for (const sample of samples) {
    const t = bucketStart(sample.t, resolutionMs);
    byBucket.set(t, [...(byBucket.get(t) ?? []), sample]);
  }
  return [...byBucket.entries()]
    .sort(([a], [b]) => a - b)
    .map(([t, members]) => {
      const bySeq = [...members].sort((a, b) => a.seq - b.seq);
      return {
        t,
        count: members.length,
        channels: Array.from({ length: channels }, (_, c) => {
          const present = bySeq.filter((s) => !Number.isNaN(s.values[c]));
          const values = present.map((s) => s.values[c]);
          return {
            count: values.length,
            sum: values.reduce((a, b) => a + b, 0),
            min: values.length ? Math.min(...values) : Infinity,
            max: values.length ? Math.max(...values) : -Infinity,
            firstSeq: present.length ? present[0].seq : Infinity,
            first: present.length ? present[0].values[c] : Number.NaN,
            lastSeq: present.length ? present[present.length - 1].seq : -Infinity,
            last: present.length ? present[present.length - 1].values[c] : Number.NaN,
          };
        }),
      };
    });
}

/**
 * Sums within a relative 1e-9 of the reference (grouping changes the rounding), everything else
 * exact, but for the sign of a zero min or max: of 0 and -0, whichever came first is kept.
 */
export function assertSameBuckets(actual: readonly BucketSummary[], expected: readonly BucketSummary[], what: string): void {
  const withoutSums = (buckets: readonly BucketSummary[]) =>
    buckets.map((b) => ({
      ...b,
      channels: b.channels.map(({ sum: _sum, min, max, ...rest }) => ({ ...rest, min: min + 0, max: max + 0 })),
    }));
  assert.deepStrictEqual(withoutSums(actual), withoutSums(expected), what);
  actual.forEach((bucket, i) => {
    bucket.channels.forEach((channel, c) => {
      const { sum: want, min, max } = expected[i].channels[c];
      const scale = channel.count === 0 ? 1 : Math.max(1, Math.abs(min), Math.abs(max));
      assert.ok(
        channel.sum === want || Math.abs(channel.sum - want) <= 1e-9 * scale * channel.count,
        `${what}: sum ${channel.sum} vs ${want} at t ${bucket.t}`,
      );
    });
  });
}

/** The buckets `parts` (as readRollups reads them) fold into at their own resolution, every one of `channels`, in ascending t. */
export function bucketsOfParts(
  parts: readonly RollupPartRead[],
  resolutionMs: number,
  fromT: number,
  toT: number,
  channels: number,
): BucketSummary[] {
  const columns = new BucketColumns(resolutionMs, channels);
  foldParts(
    parts,
    resolutionMs,
    fromT,
    toT,
    columns,
    Array.from({ length: channels }, (_, c) => c),
  );
  return summariesOf(columns.sorted());
}
