/**
 * Roll-ups in PostgreSQL (migration 012): per session, resolution and block of `bucketsPerBlock`
 * buckets, one or more parts, each holding occupied buckets in rollup-block.ts's layout.
 *
 * Writing is append-only and rides in the commit's statement that moves the sessions' counters
 * (sample-store.ts): each finest block the commit touches gets a new pending part with the
 * summaries of the commit's own samples (rollup-summaries.ts), and nothing stored is read or
 * rewritten. So a late `t` is one more part of an old block, and a commit that fails or is
 * fenced leaves no trace. The compactor (rollup-compactor.ts) folds a block's parts into one
 * and rolls pending finest parts up into the coarser resolutions later, off the ingest path.
 *
 * Reading merges the parts of each bucket (mergeBucket: in any order and grouping, exact but
 * for float rounding of sums), at a coarser resolution with the pending finest parts in range
 * rolled up (coarsen): a sample is in exactly one of the two in any snapshot. It tells whether a session's roll-ups are complete: every
 * committed sample of it is in them exactly when sessions.rollup_sample_count equals
 * sample_count, read in the same statement as the parts. Sessions stored before migration 012,
 * sessions written while roll-ups were off (WRITE_ROLLUPS) or by an older instance during a
 * rolling deploy, and sessions whose producer sprayed `t` (rollup-summaries.ts) are not, and
 * their readers use raw samples.
 */
import type pg from 'pg';
import { type BucketColumns, fieldCount } from '../aggregates/bucket-columns.ts';
import { bucketStart } from '../aggregates/bucket-summary.ts';
import { copyOutOf } from './database.ts';
import { encodeBlock, RollupBlockError, readBlock } from './rollup-block.ts';
import { decodeRollupRows } from './rollup-rows.ts';
import { blockSpanOf, rollupResolutionsMs, type SessionRollups } from './rollup-summaries.ts';
import { isSessionId } from './session-repository.ts';

/** A part as stored: its block's key, its summary bytes, and whether the compactor has work with it (migration 012). */
export interface RollupPart {
  sessionId: string;
  resolutionMs: number;
  blockT: number;
  pending: boolean;
  summary: Buffer;
}

const finest = rollupResolutionsMs[0];

/** The parts of a commit: one per block each session's samples touch. */
export function partsOf(sessions: readonly SessionRollups[]): RollupPart[] {
  const parts: RollupPart[] = [];
  for (const { sessionId, channels, blocks } of sessions) {
    for (const { resolutionMs, blockT, pending, buckets } of blocks ?? []) {
      parts.push({ sessionId, resolutionMs, blockT, pending, summary: encodeBlock(buckets, channels) });
    }
  }
  return parts;
}

/**
 * An INSERT ... SELECT of `parts` with its parameters from $`first` on, to run alone or as a
 * CTE. The summaries travel as one bytea parameter cut up by substring(): pg sends a Buffer
 * parameter as its bytes, but a bytea[] as hex text, and a parameter per part would cap a
 * statement at 65,535 / 4 parts.
 */
export function insertParts(parts: readonly RollupPart[], first: number): { sql: string; values: unknown[] } {
  const lengths = parts.map((part) => part.summary.length);
  const starts: number[] = [];
  let at = 1;
  for (const length of lengths) {
    starts.push(at);
    at += length;
  }
  const p = (k: number) => `$${first + k}`;
  return {
    sql: `INSERT INTO sample_rollups (session_id, resolution_ms, block_t, pending, summary)
          SELECT p.session_id, p.resolution_ms, p.block_t, p.pending, substring(${p(6)}::bytea FROM p.start FOR p.length)
            FROM unnest(${p(0)}::uuid[], ${p(1)}::integer[], ${p(2)}::float8[], ${p(3)}::boolean[], ${p(4)}::integer[],
                        ${p(5)}::integer[]) AS p(session_id, resolution_ms, block_t, pending, start, length)`,
    values: [
      parts.map((part) => part.sessionId),
      parts.map((part) => part.resolutionMs),
      parts.map((part) => part.blockT),
      parts.map((part) => part.pending),
      starts,
      lengths,
      Buffer.concat(parts.map((part) => part.summary)),
    ],
  };
}

/** A session's roll-up parts at one resolution, and whether they hold every committed sample of it. */
export interface RollupRead {
  /** False: some committed samples are not in the roll-ups (see the file's comment); read raw samples instead. */
  complete: boolean;
  /** The stored parts, each to `rollUp` when it is a pending finest part read for a coarser resolution. */
  parts: RollupPartRead[];
}

export interface RollupPartRead {
  rollUp: boolean;
  summary: Uint8Array;
}

/**
 * The parts at `resolutionMs` (one of rollupResolutionsMs) holding the buckets that lie wholly
 * in [fromT, toT), for foldParts, all read in one statement, so in one snapshot with
 * `complete`: a compaction commits its delete of the parts and insert of their merge at once,
 * and the snapshot holds either. A session that does not exist reads as complete and empty.
 */
export async function readRollups(pool: pg.Pool, sessionId: string, resolutionMs: number, fromT: number, toT: number): Promise<RollupRead> {
  const rows = decodeRollupRows(await copyOutOf(pool, rollupsQuery(sessionId, resolutionMs, fromT, toT)));
  const parts = rows.flatMap(({ rollUp, summary }) => (summary === null ? [] : [{ rollUp, summary }]));
  return { complete: rows[0]?.complete ?? true, parts };
}

/**
 * Folds the buckets of `parts` (stored parts of one session) at `resolutionMs` that lie wholly
 * in [fromT, toT) into `into`, each into the bucket of into's width its start falls in, its
 * `channels` (indexes of the session's) picked: a part to `rollUp` is a pending finest part,
 * whose buckets count in the coarser bucket they fall in. The parts of a bucket merge as
 * mergeBucket does, in any order and grouping, exact but for float rounding of sums; straight
 * from the stored columns, with no object per bucket (rollup-block.ts, readBlock).
 */
export function foldParts(
  parts: readonly RollupPartRead[],
  resolutionMs: number,
  fromT: number,
  toT: number,
  into: BucketColumns,
  channels: readonly number[],
): void {
  // At its own resolution a stored start is its bucket's: dividing it again could move one past 2^53.
  const target = (t: number) => (into.bucketMs === resolutionMs ? t : bucketStart(t, into.bucketMs));
  for (const { rollUp, summary } of parts) {
    const { values, m, s, base, channels: stored } = readBlock(summary);
    for (const channel of channels)
      if (channel >= stored) throw new RollupBlockError(`${stored} channels, where channel ${channel} is read`);
    const startOf = (t: number) => (rollUp ? bucketStart(t, resolutionMs) : t);
    for (let i = 0; i < m; i++) {
      const t = startOf(values[i]);
      if (t < fromT || t + resolutionMs > toT) continue;
      const row = into.rowAt(target(t));
      into.count[row] += values[m + i];
      for (let c = 0; c < channels.length; c++) into.mergeFields(row, c, values, (2 + channels[c] * fieldCount) * m + i, m);
    }
    for (let i = 0; i < s; i++) {
      const t = startOf(values[base + i]);
      if (t < fromT || t + resolutionMs > toT) continue;
      const row = into.rowAt(target(t));
      into.count[row]++;
      const seq = values[base + s + i];
      for (let c = 0; c < channels.length; c++) into.addValue(row, c, seq, values[base + (2 + channels[c]) * s + i]);
    }
  }
}

/**
 * As a COPY, so the blocks come over as their bytes (an hour at 600 ms is ~1.2 MB of them), with
 * the values written into the text as sample-store.ts's chunk pages do: a checked UUID, checked
 * numbers. A block overlaps [fromT, toT) when block_t < toT and block_t + span > fromT; a finest
 * block's buckets roll up into coarser ones that start at most one coarse bucket before it, so
 * the pending finest blocks read for a coarser resolution are those overlapping [fromT, toT).
 */
function rollupsQuery(sessionId: string, resolutionMs: number, fromT: number, toT: number): string {
  if (!isSessionId(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  if (!Number.isSafeInteger(resolutionMs) || resolutionMs <= 0) throw new Error(`not a resolution: ${resolutionMs}`);
  if (Number.isNaN(fromT) || Number.isNaN(toT)) throw new Error(`times must be numbers: ${fromT}, ${toT}`);
  const overlaps = (span: number) => `r.block_t > '${fromT - span}'::float8 AND r.block_t < '${toT}'::float8`;
  return `COPY (SELECT s.rollup_sample_count = s.sample_count, r.resolution_ms <> ${resolutionMs}, r.summary FROM sessions AS s
                  LEFT JOIN sample_rollups AS r
                    ON r.session_id = s.id
                   AND ((r.resolution_ms = ${resolutionMs} AND ${overlaps(blockSpanOf(resolutionMs))})
                     OR (r.resolution_ms = ${finest} AND r.pending AND ${overlaps(blockSpanOf(finest))}))
                 WHERE s.id = '${sessionId}' ORDER BY r.block_t) TO STDOUT (FORMAT binary)`;
}
