/**
 * The columnar answer (bucket-columns.ts, aggregate-body.ts, aggregate-text.ts) against the
 * object one it replaced (test/support/aggregate-reference.ts): for any summaries, plan, fns,
 * fill and channel names, the same JSON and CSV, byte for byte. Values cover what String()
 * writes in every form: -0, integers, decimals, exponents both ways, sums past the float64 range.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { answerOf } from '../../src/aggregates/aggregate-body.ts';
import { aggregateCsv, aggregateJson } from '../../src/aggregates/aggregate-text.ts';
import { addValue, emptyBucket } from '../../src/aggregates/bucket-summary.ts';
import type { AggregateFn } from '../../src/contract/aggregate-schemas.ts';
import { answerBuckets, columnsOf, referenceCsv, referenceJson } from '../support/aggregate-reference.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const values = fc.oneof(
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer({ min: -20_000, max: 20_000 }).map((n) => n / 10_000),
  fc.constantFrom(-0, 0, 1e308, -1e308, 1e21, 1e-7, 5e-324, 123456789012345680000, 0.1 + 0.2),
  fc.constant(Number.NaN),
);

const fnList = ['count', 'min', 'max', 'avg', 'sum', 'first', 'last'] as const;

const cases = fc.record({
  width: fc.oneof(fc.integer({ min: 1, max: 50 }), fc.constantFrom(0.5, 3600, 1e15)),
  firstIndex: fc.integer({ min: -20, max: 20 }),
  length: fc.integer({ min: 1, max: 30 }),
  channels: fc.array(fc.string({ unit: 'binary', maxLength: 6 }), { minLength: 1, maxLength: 3 }),
  present: fc.array(fc.tuple(fc.nat(), fc.array(values, { maxLength: 6 }))),
  fns: fc.uniqueArray(fc.constantFrom(...fnList), { minLength: 1 }),
  fill: fc.constantFrom('none', 'null', 'previous', 'linear' as const),
  empty: fc.boolean(),
});

test('the columnar answer is the same JSON and CSV as the object one, for any summaries and plan', () => {
  fc.assert(
    fc.property(cases, ({ width, firstIndex, length, channels, present, fns, fill, empty }) => {
      const byIndex = new Map<number, ReturnType<typeof emptyBucket>>();
      for (const [at, samples] of present) {
        const index = firstIndex + (at % length);
        const bucket = byIndex.get(index) ?? emptyBucket(index * width + 0, channels.length);
        bucket.count++;
        samples.forEach((value, seq) => {
          addValue(bucket.channels[seq % channels.length], at * 10 + seq, value);
        });
        byIndex.set(index, bucket);
      }
      const summaries = [...byIndex.values()].sort((a, b) => a.t - b.t);
      const plan = empty
        ? { bucketMs: width, firstIndex: null, lastIndex: null }
        : { bucketMs: width, firstIndex, lastIndex: firstIndex + length - 1 };
      const shown = plan.firstIndex === null ? [] : summaries;
      const header = { sessionId: 'c0ffee00-0000-4000-8000-000000000000', bucketMs: width, channels, fns: fns as AggregateFn[] };
      const reference = answerBuckets(shown, plan, channels.length, fns, fill);
      const columns = columnsOf(shown, width, channels.length);
      const answer = answerOf(columns, { from: 0, to: columns.length }, plan, fns, fill);
      assert.equal(aggregateJson(header, answer).toString(), referenceJson(header, reference));
      assert.equal(aggregateCsv(header, answer).toString(), referenceCsv(header, reference));
    }),
    fuzzParameters(1000),
  );
});

test('an answer longer than a chunk of the writer is written whole', () => {
  const summaries = Array.from({ length: 5_000 }, (_, i) => {
    const bucket = emptyBucket(i * 7, 2);
    bucket.count = 2;
    addValue(bucket.channels[0], 2 * i, i / 3);
    addValue(bucket.channels[1], 2 * i + 1, -i * 1e-9);
    return bucket;
  });
  const plan = { bucketMs: 7, firstIndex: 0, lastIndex: 5_999 };
  const header = { sessionId: 'c0ffee00-0000-4000-8000-000000000000', bucketMs: 7, channels: ['a', 'é'], fns: [...fnList] };
  const reference = answerBuckets(summaries, plan, 2, fnList, 'linear');
  const answer = answerOf(columnsOf(summaries, 7, 2), { from: 0, to: summaries.length }, plan, fnList, 'linear');
  assert.equal(aggregateJson(header, answer).toString(), referenceJson(header, reference));
  assert.equal(aggregateCsv(header, answer).toString(), referenceCsv(header, reference));
});
