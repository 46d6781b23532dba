import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { addValue, type BucketSummary, bucketStart, emptyBucket, mergeBucket } from '../../src/aggregates/bucket-summary.ts';

const runs = Number(process.env.FUZZ_RUNS ?? 200);

interface Sample {
  seq: number;
  values: number[];
}

// Values are small integers (or null) so that sums are exact in any order: the property
// checked is the merge's grouping and order independence, not float rounding.
const channelCount = 3;
const samples = fc
  .uniqueArray(fc.integer({ min: 0, max: 1_000_000 }), { maxLength: 60 })
  .chain((seqs) =>
    fc.tuple(
      fc.constant(seqs),
      fc.array(
        fc.array(fc.option(fc.integer({ min: -1000, max: 1000 }), { nil: null }), { minLength: channelCount, maxLength: channelCount }),
        {
          minLength: seqs.length,
          maxLength: seqs.length,
        },
      ),
    ),
  )
  .map(([seqs, rows]): Sample[] => seqs.map((seq, i) => ({ seq, values: rows[i].map((v) => (v === null ? Number.NaN : v)) })));

function summarize(part: readonly Sample[]): BucketSummary {
  const bucket = emptyBucket(0, channelCount);
  for (const sample of part) {
    bucket.count++;
    for (let c = 0; c < channelCount; c++) addValue(bucket.channels[c], sample.seq, sample.values[c]);
  }
  return bucket;
}

/** The definitions of the contract, computed directly from the samples. */
function reference(all: readonly Sample[]): BucketSummary {
  const bySeq = [...all].sort((a, b) => a.seq - b.seq);
  const channels = Array.from({ length: channelCount }, (_, c) => {
    const present = bySeq.filter((s) => !Number.isNaN(s.values[c]));
    const values = present.map((s) => s.values[c]);
    return {
      count: values.length,
      sum: values.reduce((a, b) => a + b, 0),
      min: Math.min(...values),
      max: Math.max(...values),
      firstSeq: present.length ? present[0].seq : Infinity,
      first: present.length ? present[0].values[c] : Number.NaN,
      lastSeq: present.length ? present[present.length - 1].seq : -Infinity,
      last: present.length ? present[present.length - 1].values[c] : Number.NaN,
    };
  });
  return { t: 0, count: all.length, channels };
}

test('summaries of any split of the samples, merged in any order, equal the summary of them all', () => {
  fc.assert(
    fc.property(samples, fc.array(fc.nat(), { maxLength: 8 }), fc.boolean(), (all, cuts, reversed) => {
      const points = [...new Set(cuts.map((cut) => cut % (all.length + 1)))].sort((a, b) => a - b);
      const parts: Sample[][] = [];
      let from = 0;
      for (const point of [...points, all.length]) {
        parts.push(all.slice(from, point));
        from = point;
      }
      if (reversed) parts.reverse();
      const merged = emptyBucket(0, channelCount);
      for (const part of parts) mergeBucket(merged, summarize(part));
      assert.deepEqual(merged, reference(all));
    }),
    { numRuns: runs },
  );
});

test('buckets are aligned to t = 0, negative t included', () => {
  assert.equal(bucketStart(0, 1000), 0);
  assert.equal(bucketStart(-0, 1000), 0, 'a t of -0 starts the bucket at 0, not -0');
  assert.equal(bucketStart(999.9, 1000), 0);
  assert.equal(bucketStart(1000, 1000), 1000);
  assert.equal(bucketStart(-0.5, 1000), -1000);
  assert.equal(bucketStart(-1000, 1000), -1000);
});
