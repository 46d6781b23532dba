/**
 * Bucket planning and fill against naive references: the width `points` picks is the first
 * width, counting up from 1, whose aligned buckets over the range are at most N; the bounds
 * refuse what they say; and every fill makes, bucket by bucket, what its definition says.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { answerOf } from '../../src/aggregates/aggregate-body.ts';
import { planBuckets, type Span } from '../../src/aggregates/bucket-plan.ts';
import { addValue, type BucketSummary, emptyBucket } from '../../src/aggregates/bucket-summary.ts';
import { bucketsOfAnswer, columnsOf, fnValue } from '../support/aggregate-reference.ts';
import { fuzzParameters } from '../support/fuzz.ts';

/** The buckets over `span` of width w, counted one by one. */
function naiveCount(span: Span, w: number): number {
  let count = 0;
  for (let i = Math.floor(span.from / w); i * w <= span.to; i++) if (span.toIncluded || i * w < span.to) count++;
  return count;
}

const spans = fc
  .tuple(fc.integer({ min: -2000, max: 2000 }), fc.integer({ min: 0, max: 3000 }), fc.constantFrom(0, 0.5, 0.25), fc.boolean())
  .map(([from, length, fraction, toIncluded]): Span => ({ from: from + fraction, to: from + fraction + length, toIncluded }))
  .filter((span) => span.from < span.to || span.toIncluded);

test('points picks the smallest whole width giving at most N aligned buckets', () => {
  fc.assert(
    fc.property(spans, fc.integer({ min: 1, max: 40 }), (span, points) => {
      let expected = 1;
      while (naiveCount(span, expected) > points && expected < 10_000) expected++;
      if (naiveCount(span, expected) > points) {
        // Only a range across t = 0 asked to fit in one bucket has no width (buckets are aligned to 0).
        assert.throws(() => planBuckets(span, { points }, 1), /no bucket width/);
        assert.ok(points === 1 && span.from < 0 && span.to >= 0);
        return;
      }
      const plan = planBuckets(span, { points }, 1);
      assert.equal(plan.bucketMs, expected, JSON.stringify({ span, points }));
      assert.equal((plan.lastIndex as number) - (plan.firstIndex as number) + 1, naiveCount(span, expected));
    }),
    fuzzParameters(500),
  );
});

test('points over a long range far from 0 still finds the smallest width, quickly', () => {
  const span: Span = { from: 1_732_345_678_901.25, to: 1_732_345_678_901.25 + 86_400_000, toIncluded: true };
  for (const points of [1, 2, 3, 1000, 1440, 10_000]) {
    const plan = planBuckets(span, { points }, 3);
    const count = (w: number) => Math.floor(span.to / w) - Math.floor(span.from / w) + 1;
    assert.ok(count(plan.bucketMs) <= points);
    for (let w = Math.max(1, plan.bucketMs - 2000); w < plan.bucketMs; w++) assert.ok(count(w) > points, `${points}: ${w}`);
  }
});

test('a range of more than 100,000 buckets or 400,000 cells is refused before anything is read', () => {
  const span: Span = { from: 0, to: 1e6, toIncluded: false };
  assert.equal(planBuckets(span, { bucketMs: 10 }, 4).lastIndex, 99_999);
  assert.throws(() => planBuckets(span, { bucketMs: 9 }, 1), /more than 100000/);
  assert.throws(() => planBuckets(span, { bucketMs: 10 }, 5), /cells, more than 400000/);
  assert.throws(() => planBuckets({ from: -1e308, to: 1e308, toIncluded: true }, { bucketMs: 1 }, 1), /more than 100000/);
  assert.throws(() => planBuckets({ from: 2 ** 60, to: 2 ** 60, toIncluded: true }, { bucketMs: 1 }, 1), /beyond 2\^53/);
  assert.deepStrictEqual(planBuckets(null, { points: 5 }, 1), { bucketMs: 1, firstIndex: null, lastIndex: null });
});

const fnNames = ['count', 'min', 'max', 'avg', 'sum', 'first', 'last'] as const;

test('every fill makes the buckets its definition gives', () => {
  const cases = fc.record({
    width: fc.integer({ min: 1, max: 50 }),
    firstIndex: fc.integer({ min: -20, max: 20 }),
    length: fc.integer({ min: 1, max: 30 }),
    present: fc.array(fc.tuple(fc.nat(), fc.array(fc.option(fc.integer({ min: -1e6, max: 1e6 }), { nil: null }), { maxLength: 4 }))),
    fill: fc.constantFrom('none', 'null', 'previous', 'linear' as const),
  });
  fc.assert(
    fc.property(cases, ({ width, firstIndex, length, present, fill }) => {
      const lastIndex = firstIndex + length - 1;
      const byIndex = new Map<number, BucketSummary>();
      for (const [at, values] of present) {
        const index = firstIndex + (at % length);
        const bucket = byIndex.get(index) ?? emptyBucket(index * width, 2);
        bucket.count++;
        values.forEach((value, seq) => {
          addValue(bucket.channels[seq % 2], seq, value ?? Number.NaN);
        });
        byIndex.set(index, bucket);
      }
      const summaries = [...byIndex.values()].sort((a, b) => a.t - b.t);
      const plan = { bucketMs: width, firstIndex, lastIndex };
      const columns = columnsOf(summaries, width, 2);
      const answer = bucketsOfAnswer(answerOf(columns, { from: 0, to: columns.length }, plan, fnNames, fill), 2, fnNames.length);
      const valuesOf = (bucket: BucketSummary) => bucket.channels.map((channel) => fnNames.map((fn) => fnValue(channel, fn)));
      const expected = [];
      for (let index = firstIndex; index <= lastIndex; index++) {
        const t = index * width + 0;
        const own = byIndex.get(index);
        if (own) expected.push({ t, count: own.count, values: valuesOf(own) });
        else if (fill !== 'none') {
          const before = summaries.filter((s) => s.t < t).at(-1);
          const after = summaries.find((s) => s.t > t);
          const values = [0, 1].map((c) =>
            fnNames.map((_, f) => {
              if (fill === 'null' || !before) return null;
              const v0 = valuesOf(before)[c][f];
              if (fill === 'previous') return v0;
              const v1 = after ? valuesOf(after)[c][f] : null;
              return v0 === null || v1 === null || !after ? null : v0 + (v1 - v0) * ((t - before.t) / (after.t - before.t));
            }),
          );
          expected.push({ t, count: 0, values });
        }
      }
      assert.deepStrictEqual(answer, expected);
    }),
    fuzzParameters(1000),
  );
});
