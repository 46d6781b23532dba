/**
 * Bucket summaries computed from the raw samples (the SummarySource of aggregates/): the
 * chunks that may hold samples of the range, a page at a time through SampleStore.readRange,
 * each batch folded into its buckets as it comes, so memory follows the buckets asked for,
 * never the session's size. Every chunk of the range is read: the cost grows with the
 * samples, which roll-ups kept by the writer are for.
 */

import type { BucketColumns } from '../aggregates/bucket-columns.ts';
import { BucketAccumulator, type SummaryRequest, type SummarySource } from '../aggregates/summary-source.ts';
import type { SampleStore } from './sample-store.ts';

export class RawSummarySource implements SummarySource {
  constructor(private readonly store: Pick<SampleStore, 'readRange'>) {}

  async summaries({ sessionId, channels, bucketMs, fromT, toT }: SummaryRequest): Promise<BucketColumns> {
    const accumulator = new BucketAccumulator(bucketMs, channels);
    // Unbounded both ways, the time index has nothing to skip: a plain read by seq.
    const times = fromT === Number.NEGATIVE_INFINITY && toT === Number.POSITIVE_INFINITY ? undefined : { fromT, toT };
    for await (const batch of this.store.readRange(sessionId, 0, Number.MAX_SAFE_INTEGER, times)) accumulator.add(batch);
    return accumulator.summaries();
  }
}
