/**
 * Which buckets an aggregate covers: their width (asked, or picked for `points`) and the
 * indexes of the first and last bucket of its range. Bucket i holds i * bucketMs <= t <
 * (i + 1) * bucketMs, so the index of t is floor(t / bucketMs) (bucket-summary.ts, bucketStart).
 *
 * The range is fromT (else the session's firstT) to the last instant before toT (else lastT,
 * itself included). Every bound is checked before a sample is read: at most maxBuckets buckets
 * and maxCells bucket-channel cells, and bucket indexes that are safe integers, so that counting
 * from the first index to the last visits each bucket once (past 2^53, i + 1 is i).
 */
import { maxBuckets, maxCells } from '../contract/aggregate-schemas.ts';
import { refuse, type TimeBounds } from './aggregate-query.ts';

/** The instants covered: from `from` to `to`, `to` included or not. */
export interface Span {
  from: number;
  to: number;
  toIncluded: boolean;
}

export interface BucketPlan {
  bucketMs: number;
  /** Null when the range holds no instant (fromT = toT, or a session without samples): no bucket. */
  firstIndex: number | null;
  lastIndex: number | null;
}

/** The span of a query over a session whose committed t lie in firstT..lastT (null before any sample); null when empty. */
export function spanOf({ fromT, toT }: TimeBounds, firstT: number | null, lastT: number | null): Span | null {
  const from = fromT ?? firstT;
  const to = toT ?? lastT;
  if (from === null || to === null) return null;
  const toIncluded = toT === null;
  return from < to || (toIncluded && from === to) ? { from, to, toIncluded } : null;
}

export function firstIndexOf(span: Span, bucketMs: number): number {
  return Math.floor(span.from / bucketMs);
}

export function lastIndexOf(span: Span, bucketMs: number): number {
  return span.toIncluded ? Math.floor(span.to / bucketMs) : Math.ceil(span.to / bucketMs) - 1;
}

export function bucketCountOf(span: Span, bucketMs: number): number {
  return lastIndexOf(span, bucketMs) - firstIndexOf(span, bucketMs) + 1;
}

/**
 * Candidate widths `points` may try before it gives up: each is a few float operations, so
 * this bounds the planning of one query to milliseconds. Only a range that starts below t = 0
 * and asks for very few points can need more (see smallestWidth).
 */
const maxWidthTrials = 1_000_000;

/**
 * The smallest whole width giving at most `points` buckets over `span`, refused if none is
 * found within maxWidthTrials. A width below (to - from) / points gives more buckets than that
 * (each holds less than its share), so the search starts there. From a `from` at or above 0,
 * a failed width w, with q = floor(from / w), says more: every wider width w' whose first
 * index is at most q (all of them, as from >= 0) needs (q + points) * w' to reach `to`, so
 * the search jumps to to / (q + points) (one below, against rounding) instead of to w + 1.
 */
function smallestWidth(span: Span, points: number): number {
  let width = Math.max(1, Math.floor((span.to - span.from) / points));
  for (let trial = 0; trial < maxWidthTrials && width <= Number.MAX_SAFE_INTEGER; trial++) {
    if (bucketCountOf(span, width) <= points) return width;
    const next = span.from >= 0 ? Math.floor(span.to / (firstIndexOf(span, width) + points)) - 1 : 0;
    width = Math.max(width + 1, next);
  }
  return refuse(`no bucket width up to the search bound gives at most ${points} aligned buckets over this range; ask with bucketMs`);
}

/** The plan of a query asking for `bucketMs` or `points` over `span`, for `channelCount` channels. */
export function planBuckets(span: Span | null, ask: { bucketMs: number } | { points: number }, channelCount: number): BucketPlan {
  if ('points' in ask && span === null) return { bucketMs: 1, firstIndex: null, lastIndex: null };
  const bucketMs = 'bucketMs' in ask ? ask.bucketMs : smallestWidth(span as Span, ask.points);
  if (span === null) return { bucketMs, firstIndex: null, lastIndex: null };
  const firstIndex = firstIndexOf(span, bucketMs);
  const lastIndex = lastIndexOf(span, bucketMs);
  const buckets = lastIndex - firstIndex + 1;
  if (buckets > maxBuckets)
    refuse(
      `bucketMs=${bucketMs} gives ${buckets} buckets over this range, more than ${maxBuckets}; widen it or ask for points`,
      'aggregate_too_large',
    );
  if (buckets * channelCount > maxCells)
    refuse(
      `${buckets} buckets of ${channelCount} channels are ${buckets * channelCount} cells, more than ${maxCells}; ask for fewer`,
      'aggregate_too_large',
    );
  if (!Number.isSafeInteger(firstIndex) || !Number.isSafeInteger(lastIndex))
    refuse(`t / bucketMs reaches beyond 2^53 over this range, where buckets cannot be told apart; ask for wider buckets`);
  return { bucketMs, firstIndex, lastIndex };
}
