/**
 * Where an aggregate's bucket summaries come from: the port the read side declares and
 * app.ts fills with the roll-ups the writer keeps (storage/rollup-source.ts), a bucket of width
 * w merged from roll-up buckets of a resolution dividing w, with the raw samples
 * (storage/raw-summaries.ts) where fromT or toT cuts one, or where no roll-up answers.
 */

import type { SampleBatch } from '../samples/sample-batch.ts';
import { BucketColumns } from './bucket-columns.ts';
import { bucketStart } from './bucket-summary.ts';

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
  /** One row per bucket holding at least one of the samples asked for, in ascending t, with the channels asked for. */
  summaries(request: SummaryRequest): Promise<BucketColumns>;
}

/**
 * Summaries of samples added batch by batch, in any order of t (a producer's clock may jump
 * back): one per bucket met, so memory follows the buckets, never the samples.
 */
export class BucketAccumulator {
  private readonly columns: BucketColumns;

  constructor(
    private readonly bucketMs: number,
    private readonly channels: readonly number[],
  ) {
    this.columns = new BucketColumns(bucketMs, channels.length);
  }

  add(batch: SampleBatch): void {
    const { bucketMs, channels, columns } = this;
    for (let i = 0; i < batch.count; i++) {
      // Consecutive samples mostly share a bucket, which rowAt finds without a lookup.
      const row = columns.rowAt(bucketStart(batch.t(i), bucketMs));
      columns.count[row]++;
      const seq = batch.seq(i);
      for (let c = 0; c < channels.length; c++) columns.addValue(row, c, seq, batch.value(channels[c], i));
    }
  }

  /** In ascending t. */
  summaries(): BucketColumns {
    return this.columns.sorted();
  }
}
