/**
 * What an aggregate bucket knows of its samples: enough to answer every `fn` of the contract
 * (count, min, max, avg, sum, first, last) and to merge. Two summaries of disjoint sets of a
 * session's samples merge into the summary of their union, in any order and any grouping:
 * count, min and max trivially, first and last by `seq` (a session's seqs are unique), sum up
 * to float rounding. That is what keeps roll-ups exact when they are written batch by batch and
 * a producer's clock jumps back (a late `t` lands in an old bucket and merges in there), and
 * what lets a read combine roll-up buckets with summaries of raw samples at a range's edges.
 *
 * Sums are plain float64 additions, so a sum (and avg) merged in another grouping may differ
 * from one added up in seq order in the last bits; every other field is exact.
 */

/** One channel of a bucket. A null value (NaN in memory) is skipped: `count` counts non-null values. */
export interface ChannelSummary {
  count: number;
  sum: number;
  /** +Infinity while count is 0. */
  min: number;
  /** -Infinity while count is 0. */
  max: number;
  /** The seq of the first non-null value, +Infinity while count is 0. */
  firstSeq: number;
  /** NaN while count is 0. */
  first: number;
  /** The seq of the last non-null value, -Infinity while count is 0. */
  lastSeq: number;
  /** NaN while count is 0. */
  last: number;
}

/** A bucket: its aligned start `t`, how many samples fell in it (nulls included), and its channels in the session's order. */
export interface BucketSummary {
  t: number;
  count: number;
  channels: ChannelSummary[];
}

export function emptyChannel(): ChannelSummary {
  return { count: 0, sum: 0, min: Infinity, max: -Infinity, firstSeq: Infinity, first: Number.NaN, lastSeq: -Infinity, last: Number.NaN };
}

export function emptyBucket(t: number, channelCount: number): BucketSummary {
  return { t, count: 0, channels: Array.from({ length: channelCount }, emptyChannel) };
}

/** Counts a value at `seq` into a channel; a null (NaN) is not counted. */
export function addValue(channel: ChannelSummary, seq: number, value: number): void {
  if (Number.isNaN(value)) return;
  channel.count++;
  channel.sum += value;
  if (value < channel.min) channel.min = value;
  if (value > channel.max) channel.max = value;
  if (seq < channel.firstSeq) {
    channel.firstSeq = seq;
    channel.first = value;
  }
  if (seq > channel.lastSeq) {
    channel.lastSeq = seq;
    channel.last = value;
  }
}

/** Folds `source` (a summary of other samples) into `target`. */
export function mergeChannel(target: ChannelSummary, source: ChannelSummary): void {
  if (source.count === 0) return;
  target.count += source.count;
  target.sum += source.sum;
  if (source.min < target.min) target.min = source.min;
  if (source.max > target.max) target.max = source.max;
  if (source.firstSeq < target.firstSeq) {
    target.firstSeq = source.firstSeq;
    target.first = source.first;
  }
  if (source.lastSeq > target.lastSeq) {
    target.lastSeq = source.lastSeq;
    target.last = source.last;
  }
}

/** Folds `source` into `target`, two summaries of the same bucket with the same channels. */
export function mergeBucket(target: BucketSummary, source: BucketSummary): void {
  target.count += source.count;
  for (let c = 0; c < target.channels.length; c++) mergeChannel(target.channels[c], source.channels[c]);
}

/** The aligned start of the bucket holding `t`: buckets are aligned to t = 0. */
export function bucketStart(t: number, bucketWidth: number): number {
  // + 0 turns a -0 (t = -0) into 0.
  return Math.floor(t / bucketWidth) * bucketWidth + 0;
}
