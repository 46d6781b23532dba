/**
 * Bucket summaries from the roll-ups the writer keeps (the SummarySource app.ts gives the
 * aggregate reads): a bucket of width w is the merge of the roll-up buckets of the coarsest
 * resolution r that divides w, and where fromT or toT cuts an r-bucket, of the next finer
 * resolution's buckets in that cut piece, and so on down to 600 ms, below which the raw samples
 * of what is left (less than 600 ms on each side). So an hour of 1 kHz at w = 3,600 reads 6,000
 * stored buckets and no sample, where the raw source reads all 3.6 M.
 *
 * Roll-ups outlive the raw samples (ROLLUP_RETENTION_DAYS >= RETENTION_DAYS): over a range whose
 * samples retention has deleted, an aggregate whose fromT and toT are multiples of 600 ms is
 * exact, answered from roll-ups alone; otherwise the pieces under 600 ms at its ends hold only
 * the samples still stored.
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
    const resolution = resolutionFor(request.bucketMs);
    if (resolution === undefined) return this.raw.summaries(request);
    const buckets = new BucketColumns(request.bucketMs, request.channels.length);
    // Coarsest first; each divides the next, so every one divides the width.
    const resolutions = rollupResolutionsMs.filter((r) => r <= resolution).reverse();
    const complete = await this.add(request, resolutions, request.fromT, request.toT, buckets);
    return complete ? buckets.sorted() : this.raw.summaries(request);
  }

  /**
   * Adds [fromT, toT) to `buckets`: the buckets of the first resolution wholly inside it, and the
   * cut pieces at its ends from the finer ones, raw samples below the finest. False when the
   * session's roll-ups are not complete: the caller then reads it all raw.
   */
  private async add(
    request: SummaryRequest,
    resolutions: readonly number[],
    fromT: number,
    toT: number,
    buckets: BucketColumns,
  ): Promise<boolean> {
    const [resolution, ...finer] = resolutions;
    if (resolution === undefined) {
      const cut = await this.raw.summaries({ ...request, fromT, toT });
      for (let row = 0; row < cut.length; row++) buckets.mergeRow(cut, row);
      return true;
    }
    // The r-buckets wholly inside [fromT, toT); an infinite bound stays infinite.
    const innerFrom = Math.ceil(fromT / resolution) * resolution;
    const innerTo = Math.floor(toT / resolution) * resolution;
    if (!(innerFrom < innerTo)) return this.add(request, finer, fromT, toT, buckets);
    const stored = await readRollups(this.pool, request.sessionId, resolution, innerFrom, innerTo);
    if (!stored.complete) return false;
    foldParts(stored.parts, resolution, innerFrom, innerTo, buckets, request.channels);
    if (fromT < innerFrom && !(await this.add(request, finer, fromT, innerFrom, buckets))) return false;
    return !(innerTo < toT) || this.add(request, finer, innerTo, toT, buckets);
  }
}
