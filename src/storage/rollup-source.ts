/**
 * Bucket summaries from the roll-ups the writer keeps (the SummarySource app.ts gives the
 * aggregate reads): a bucket of width w is the merge of the roll-up buckets of the coarsest
 * resolution r that divides w, and where fromT or toT cuts an r-bucket, of the raw samples of
 * that cut piece (less than r on each side). So an hour of 1 kHz at w = 3,600 reads 6,000
 * stored buckets and no sample, where the raw source reads all 3.6 M.
 *
 * The raw source answers alone when no resolution divides w, and when the session's roll-ups
 * are not complete (written before roll-ups existed, while they were off, or past the spray
 * bound: rollup-store.ts); `complete` comes from the same snapshot as the buckets.
 *
 * Freshness: everything acked before the request is in the roll-ups read, since roll-ups are
 * committed with their chunks. The edges are read after, in their own snapshots, and may hold
 * samples committed in between: an answer may include a newer sample, never miss an acked one.
 */
import type pg from 'pg';
import { BucketColumns } from '../aggregates/bucket-columns.ts';
import type { SummaryRequest, SummarySource } from '../aggregates/summary-source.ts';
import { RawSummarySource } from './raw-summaries.ts';
import { foldParts, readRollups } from './rollup-store.ts';
import { rollupResolutionsMs } from './rollup-summaries.ts';
import type { SampleStore } from './sample-store.ts';

/** The coarsest resolution that divides `bucketMs`, if any. */
export function resolutionFor(bucketMs: number): number | undefined {
  return [...rollupResolutionsMs].reverse().find((resolution) => bucketMs % resolution === 0);
}

export class RollupSummarySource implements SummarySource {
  private readonly raw: SummarySource;

  constructor(
    private readonly pool: pg.Pool,
    store: Pick<SampleStore, 'readRange'>,
  ) {
    this.raw = new RawSummarySource(store);
  }

  async summaries(request: SummaryRequest): Promise<BucketColumns> {
    const { sessionId, channels, bucketMs, fromT, toT } = request;
    const resolution = resolutionFor(bucketMs);
    if (resolution === undefined) return this.raw.summaries(request);
    // The r-buckets wholly inside [fromT, toT); an infinite bound stays infinite.
    const innerFrom = Math.ceil(fromT / resolution) * resolution;
    const innerTo = Math.floor(toT / resolution) * resolution;
    if (!(innerFrom < innerTo)) return this.raw.summaries(request);
    const stored = await readRollups(this.pool, sessionId, resolution, innerFrom, innerTo);
    if (!stored.complete) return this.raw.summaries(request);
    const buckets = new BucketColumns(bucketMs, channels.length);
    foldParts(stored.parts, resolution, innerFrom, innerTo, buckets, channels);
    for (const edge of [fromT < innerFrom ? { toT: innerFrom } : null, innerTo < toT ? { fromT: innerTo } : null]) {
      if (edge === null) continue;
      const cut = await this.raw.summaries({ ...request, ...edge });
      for (let row = 0; row < cut.length; row++) buckets.mergeRow(cut, row);
    }
    return buckets.sorted();
  }
}
