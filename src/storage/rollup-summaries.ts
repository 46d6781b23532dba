/**
 * The roll-ups of one commit: the bucket summaries of its samples at every resolution, worked
 * out from the COPY body the commit stores (chunk-codec.ts's encodeCopyBinary), so what the
 * roll-ups count is exactly what the transaction writes. It runs where the transaction does,
 * on the commit thread, which otherwise waits on round trips: the main thread only builds the
 * body, as before.
 *
 * Each sample is added once, to the group of samples that share its bucket at every resolution
 * (at the finest, in effect). A commit writes the finest resolution only, the groups merged per
 * bucket: the coarser buckets are those finest ones merged (coarsen), which the compactor does
 * off the ingest path, so a commit appends one part per block touched, not one per resolution
 * (a third of the rows, which at 20 samples a session a commit cost as much WAL as the chunks).
 * A bucket is found from `t` alone, so samples land in their bucket whatever their order; a late
 * `t` makes its session touch an old block, to which the store appends a part (rollup-store.ts).
 *
 * The work a session may ask of one commit is bounded by `maxBlocksPerSession`: a producer
 * spraying `t` over millions of buckets would otherwise make each commit append that many
 * parts. Past the bound its roll-ups are not written in this commit, and the session is left
 * with fewer samples in its roll-ups than stored (sessions.rollup_sample_count), which tells
 * readers to use raw samples: correct, only slower.
 */
import { type BucketSummary, bucketStart, emptyBucket, mergeBucket } from '../aggregates/bucket-summary.ts';

/**
 * The resolutions kept, in ms, finest first, each dividing the next. A bucket of width w is
 * answered from the coarsest that divides it: 1 h to 1,000 buckets (3.6 s) and `points=2000`
 * over 1 h (1.8 s) from 600 ms (6,000 buckets an hour), a day to 1,440 buckets from 1 min, a
 * month from 1 h. No finer one: an hour at 100 ms (36,000 buckets) read in 250-290 ms, too
 * slow to serve a read, and cost six times the writes of 600 ms. docs/architecture.md, "Roll-ups".
 */
export const rollupResolutionsMs = [600, 60_000, 3_600_000] as const;
export type RollupResolution = (typeof rollupResolutionsMs)[number];

/** Buckets a block spans: few enough that the compactor's rewrite of a block still filling stays small. */
export const bucketsPerBlock = 64;

export function blockSpanOf(resolutionMs: number): number {
  return resolutionMs * bucketsPerBlock;
}

/** Blocks one session may touch in one commit, summed over the resolutions (a 10,000-sample backlog at 1 Hz touches ~270). */
export const maxBlocksPerSession = 4_096;

/** One block's new buckets, in ascending t. */
export interface RollupBlock {
  resolutionMs: number;
  blockT: number;
  /** The compactor has work with it (migration 012, sample_rollups.pending). */
  pending: boolean;
  buckets: BucketSummary[];
}

/** A session's part of a commit: its blocks, or null when it asked too much (its roll-ups stay behind). */
export interface SessionRollups {
  sessionId: string;
  channels: number;
  samples: number;
  blocks: RollupBlock[] | null;
}

/**
 * Samples that share their bucket at every resolution. Each resolution's bucket of a sample is
 * bucketStart(t) at that resolution, as a read over raw samples computes it, rather than the
 * coarse bucket of its fine bucket: in floating point the two part ways within an ulp of a
 * boundary (a t of a few denormals below 0 may round to -0 at one width and not at another).
 */
interface Group {
  starts: number[];
  bucket: BucketSummary;
  /**
   * Every t in [lo, hi] is in this group: each resolution's bucketStart is monotonic in t, so
   * what holds at both ends holds between. Samples are found by these two comparisons, not by
   * working out their buckets (a division per resolution, most of the cost when they were).
   */
  lo: number;
  hi: number;
}

interface Accumulator {
  sessionId: string;
  channels: number;
  samples: number;
  finite: boolean;
  groups: Map<string, Group>;
}

const resolutionCount = rollupResolutionsMs.length;
const copyHeaderBytes = 11 + 4 + 4;

function uuidText(body: Buffer, at: number): string {
  const hex = body.toString('hex', at, at + 16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

function startsOf(t: number): number[] {
  return rollupResolutionsMs.map((resolutionMs) => bucketStart(t, resolutionMs));
}

const sameStarts = (a: readonly number[], b: readonly number[]) => a.every((start, k) => start === b[k]);

/** The group of `t`, with [lo, hi] its finest bucket when both ends are in every bucket of t, else t alone. */
function groupOf(into: Accumulator, t: number): Group {
  const starts = startsOf(t);
  const key = starts.join(',');
  let group = into.groups.get(key);
  if (group === undefined) {
    const lo = starts[0];
    const hi = lo + rollupResolutionsMs[0] - Math.abs(lo + rollupResolutionsMs[0]) * Number.EPSILON;
    const whole = lo <= t && t <= hi && sameStarts(startsOf(lo), starts) && sameStarts(startsOf(hi), starts);
    group = { starts, bucket: emptyBucket(starts[0], into.channels), lo: whole ? lo : t, hi: whole ? hi : t };
    into.groups.set(key, group);
  }
  return group;
}

/** A chunk row's samples (`payload`, column-wise, seqs rising) and how to find the seq of each. */
interface Chunk {
  payload: Float64Array;
  count: number;
  /** Where channel 0's column starts, less 2 * count: -count when seqs are implied (no seq column). */
  offset: number;
  firstSeq: number;
  implied: boolean;
}

const seqAt = (chunk: Chunk, i: number) => (chunk.implied ? chunk.firstSeq + i : chunk.payload[i]);

/**
 * Adds samples [from, to) of `chunk`, all in `bucket`, a channel at a time in a tight loop: a
 * chunk's seqs rise, so a run's first and last seq of a channel are those of its first and last
 * non-null value, and only they meet the bucket's. Three times as fast as adding each value
 * on its own (addValue), which is most of what roll-ups cost the commit thread.
 */
function addRun(bucket: BucketSummary, chunk: Chunk, from: number, to: number): void {
  const { payload, count, offset } = chunk;
  bucket.count += to - from;
  for (let c = 0; c < bucket.channels.length; c++) {
    const base = offset + (2 + c) * count;
    let n = 0;
    let sum = 0;
    let min = Infinity;
    let max = -Infinity;
    let first = -1;
    let last = -1;
    for (let i = from; i < to; i++) {
      const value = payload[base + i];
      if (Number.isNaN(value)) continue;
      if (first < 0) first = i;
      last = i;
      n++;
      sum += value;
      if (value < min) min = value;
      if (value > max) max = value;
    }
    if (n === 0) continue;
    const channel = bucket.channels[c];
    channel.count += n;
    channel.sum += sum;
    if (min < channel.min) channel.min = min;
    if (max > channel.max) channel.max = max;
    const firstSeq = seqAt(chunk, first);
    const lastSeq = seqAt(chunk, last);
    if (firstSeq < channel.firstSeq) {
      channel.firstSeq = firstSeq;
      channel.first = payload[base + first];
    }
    if (lastSeq > channel.lastSeq) {
      channel.lastSeq = lastSeq;
      channel.last = payload[base + last];
    }
  }
}

/** Adds one chunk row's samples to its session's groups, a run of samples in the same group at a time. */
function addPayload(payload: Float64Array, count: number, firstSeq: number, implied: boolean, into: Accumulator): void {
  const columns = payload.length / count + (implied ? 1 : 0);
  into.channels = columns - 2;
  const chunk: Chunk = { payload, count, offset: implied ? -count : 0, firstSeq, implied };
  const tAt = chunk.offset + count;
  let i = 0;
  while (i < count) {
    const t = payload[tAt + i];
    if (!Number.isFinite(t)) {
      into.finite = false;
      i++;
      continue;
    }
    const { bucket, lo, hi } = groupOf(into, t);
    let end = i + 1;
    while (end < count && payload[tAt + end] >= lo && payload[tAt + end] <= hi) end++;
    addRun(bucket, chunk, i, end);
    i = end;
  }
  into.samples += count;
}

/** Each session's groups, from a body encodeCopyBinary wrote (its layout is trusted, its lengths checked). */
function accumulate(body: Buffer): Map<string, Accumulator> {
  const sessions = new Map<string, Accumulator>();
  let at = copyHeaderBytes + body.readInt32BE(copyHeaderBytes - 4);
  for (;;) {
    const fields = body.readInt16BE(at);
    if (fields === -1) return sessions;
    const sessionId = uuidText(body, at + 6);
    const firstSeq = Number(body.readBigInt64BE(at + 26));
    const count = body.readInt32BE(at + 50);
    const layout = body.readInt16BE(at + 58);
    const bytes = body.readInt32BE(at + 84);
    at += 88;
    if (bytes < 0 || at + bytes > body.length) throw new Error(`a chunk payload of ${bytes} bytes past the end of the COPY body`);
    let into = sessions.get(sessionId);
    if (into === undefined) {
      into = { sessionId, channels: 0, samples: 0, finite: true, groups: new Map() };
      sessions.set(sessionId, into);
    }
    // Copied out once: the payload sits at any offset of the body, and Float64Array needs 8-byte alignment.
    const payload = new Float64Array(bytes / 8);
    new Uint8Array(payload.buffer).set(body.subarray(at, at + bytes));
    addPayload(payload, count, firstSeq, layout === 1, into);
    at += bytes;
  }
}

/**
 * Whether each coarser bucket of a group is the one its finest bucket's start falls in, so
 * that coarsen() of its finest bucket gives its coarser buckets exactly. All but groups within
 * an ulp of a boundary (see Group).
 */
const isRegular = (starts: readonly number[]) => starts.every((start, k) => start === bucketStart(starts[0], rollupResolutionsMs[k]));

/**
 * The parts a commit appends, from the groups; null past maxBlocksPerSession. A regular group
 * goes in a pending part at the finest resolution only: the compactor rolls it up into the
 * coarser ones, and readers of those roll up the pending parts they meet. An irregular one
 * goes in every resolution, its finest part not pending (it is in the coarser ones already).
 */
function blocksOf(groups: readonly Group[], channels: number): RollupBlock[] | null {
  const blocks = new Map<string, { block: RollupBlock; byT: Map<number, BucketSummary> }>();
  const add = (k: number, { starts, bucket }: Group, pending: boolean): boolean => {
    const resolutionMs = rollupResolutionsMs[k];
    const t = starts[k];
    const blockT = bucketStart(t, blockSpanOf(resolutionMs));
    const key = `${resolutionMs}/${blockT}/${pending}`;
    let entry = blocks.get(key);
    if (entry === undefined) {
      if (blocks.size >= maxBlocksPerSession) return false;
      entry = { block: { resolutionMs, blockT, pending, buckets: [] }, byT: new Map() };
      blocks.set(key, entry);
    }
    let summary = entry.byT.get(t);
    if (summary === undefined) {
      summary = emptyBucket(t, channels);
      entry.byT.set(t, summary);
    }
    mergeBucket(summary, bucket);
    return true;
  };
  for (const group of groups) {
    const regular = isRegular(group.starts);
    for (let k = 0; k < (regular ? 1 : resolutionCount); k++) if (!add(k, group, regular || k > 0)) return null;
  }
  return [...blocks.values()].map(({ block, byT }) => ({ ...block, buckets: [...byT.values()].sort((a, b) => a.t - b.t) }));
}

/**
 * Finest-resolution buckets merged into the buckets of a coarser `resolutionMs` their starts
 * fall in, in ascending t; `fine` is left as it was.
 */
export function coarsen(fine: readonly BucketSummary[], resolutionMs: number): BucketSummary[] {
  const byT = new Map<number, BucketSummary>();
  for (const bucket of fine) {
    const t = bucketStart(bucket.t, resolutionMs);
    let coarse = byT.get(t);
    if (coarse === undefined) {
      coarse = emptyBucket(t, bucket.channels.length);
      byT.set(t, coarse);
    }
    mergeBucket(coarse, bucket);
  }
  return [...byT.values()].sort((a, b) => a.t - b.t);
}

/** The roll-ups of a commit's COPY body, per session in the body. */
export function rollupsOfCopyBody(body: Buffer): SessionRollups[] {
  return [...accumulate(body).values()].map(({ sessionId, channels, samples, finite, groups }) => ({
    sessionId,
    channels,
    samples,
    blocks: finite ? blocksOf([...groups.values()], channels) : null,
  }));
}
