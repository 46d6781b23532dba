/**
 * Where an aggregate's bucket summaries come from: the port the read side declares and
 * app.ts fills. Today the raw samples (storage/raw-summaries.ts, through a BucketAccumulator);
 * roll-ups kept by the writer fit the same port, a bucket of width w merged from roll-up
 * buckets of a resolution dividing w, with raw samples where fromT or toT cuts one.
 */

import type { SampleBatch } from '../samples/sample-batch.ts';
import { addValue, type BucketSummary, bucketStart, emptyBucket } from './bucket-summary.ts';

export interface SummaryRequest {
  sessionId: string;
  /**
   * Indexes of the session's channels to summarize; a summary's `channels` come in this order.
   * A roll-up keeps every channel, and picks these.
   */
  channels: readonly number[];
  /** A positive integer: buckets are aligned to t = 0. */
  bucketMs: number;
  /** The samples with fromT <= t < toT, either of which may be infinite. */
  fromT: number;
  toT: number;
}

export interface SummarySource {
  /** One summary per bucket holding at least one of the samples asked for, in ascending t. */
  summaries(request: SummaryRequest): Promise<BucketSummary[]>;
}

/**
 * Summaries of samples added batch by batch, in any order of t (a producer's clock may jump
 * back): one per bucket met, so memory follows the buckets, never the samples.
 */
export class BucketAccumulator {
  private readonly buckets = new Map<number, BucketSummary>();

  constructor(
    private readonly bucketMs: number,
    private readonly channels: readonly number[],
  ) {}

  add(batch: SampleBatch): void {
    const { bucketMs, channels } = this;
    // Consecutive samples mostly share a bucket: the map is looked up when the bucket changes.
    let current: BucketSummary | undefined;
    for (let i = 0; i < batch.count; i++) {
      const start = bucketStart(batch.t(i), bucketMs);
      if (current === undefined || current.t !== start) current = this.bucketAt(start);
      current.count++;
      const seq = batch.seq(i);
      for (let c = 0; c < channels.length; c++) addValue(current.channels[c], seq, batch.value(channels[c], i));
    }
  }

  /** In ascending t. */
  summaries(): BucketSummary[] {
    return [...this.buckets.values()].sort((a, b) => a.t - b.t);
  }

  private bucketAt(start: number): BucketSummary {
    let bucket = this.buckets.get(start);
    if (bucket === undefined) {
      bucket = emptyBucket(start, this.channels.length);
      this.buckets.set(start, bucket);
    }
    return bucket;
  }
}
