/**
 * Samples in PostgreSQL, as chunk rows. A commit writes every chunk of a flush with one binary
 * COPY and moves the sessions' counters in the same transaction, so `sampleCount` and `lastSeq`
 * never count what is not stored (docs/architecture.md, principle 1: they count committed
 * samples). Reads page through chunks by key (never OFFSET), so memory stays flat for any
 * session size, each page as one binary COPY: a plain query would hand each payload over as hex
 * text, which pg turns into a string and then decodes, about a quarter of an export's CPU.
 */

import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { type SampleBatch, type TRange, widen } from '../samples/sample-batch.ts';
import { batchFromPayload, type ChunkRow, copyChunksSql, decodeCopyBinary, encodeCopyBinary, tRangeOf } from './chunk-codec.ts';
import { FencedError, OverlapError, refusal } from './commit-refusal.ts';
import { copyOutOf, withPooledClient } from './database.ts';
import { insertParts, partsOf } from './rollup-store.ts';
import { rollupsOfCopyBody, type SessionRollups } from './rollup-summaries.ts';
import { isSessionId } from './session-repository.ts';

export interface SessionAdvance {
  sessionId: string;
  sampleCount: number;
  lastSeq: number;
  /** The producer epoch this process holds (storage/session-repository.ts); absent: not fenced. */
  epoch?: number;
}

/**
 * An advance with the lowest and highest t of its session's rows in the commit (null: none),
 * which move firstT and lastT, and the lowest seq of those rows, which must lie above the
 * session's stored lastSeq (null: no rows).
 */
export interface TimedAdvance extends SessionAdvance {
  minT: number | null;
  maxT: number | null;
  firstSeq: number | null;
}

/** Each session's advance with the t range of its rows: derived here, so no caller can leave firstT and lastT behind. */
export function withTRanges(advances: readonly SessionAdvance[], rows: readonly ChunkRow[]): TimedAdvance[] {
  const ranges = new Map<string, TRange>();
  const firstSeqs = new Map<string, number>();
  for (const row of rows) {
    const range = tRangeOf(row);
    const before = ranges.get(row.sessionId);
    ranges.set(row.sessionId, before ? widen(before, range) : range);
    const first = row.batches[0].firstSeq;
    firstSeqs.set(row.sessionId, Math.min(first, firstSeqs.get(row.sessionId) ?? first));
  }
  return advances.map((advance) => {
    const range = ranges.get(advance.sessionId);
    return { ...advance, minT: range?.min ?? null, maxT: range?.max ?? null, firstSeq: firstSeqs.get(advance.sessionId) ?? null };
  });
}

/**
 * Written in a commit's transaction (migration 004): the writer lane that commits, and the
 * flush it commits. How the writer learns the outcome of a commit whose answer was lost.
 */
export interface CommitMarker {
  laneId: string;
  flushId: string;
}

/** Where the writer commits (batch-writer.ts): this store, or the same work on a thread of its own (commit-thread.ts). */
export interface ChunkCommitter {
  /** Without a marker, a commit whose answer is lost cannot be told from one that failed. */
  commitChunks(rows: readonly ChunkRow[], advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void>;
  isCommitted(marker: CommitMarker): Promise<boolean>;
}

/** A read by time: the samples with fromT <= t < toT (either may be infinite). */
export interface TimeRange {
  fromT: number;
  toT: number;
}

/** Chunks fetched per round trip when reading: at most ~16 x 2,000 samples in memory. */
const readPageChunks = 16;

/**
 * How often a store deletes the marker rows of lanes that stopped, and how old they must be: a
 * row is needed only while its lane has a flush whose outcome is unknown, which lasts as long
 * as the database is out of reach; a week is far beyond any outage the writer rides out.
 */
const laneSweepIntervalMs = 60 * 60 * 1000;
const staleLaneAge = '7 days';

export interface SampleStoreOptions {
  /** Whether commits keep the roll-ups (rollup-store.ts); default true. Off, sessions' roll-ups fall behind and readers use raw samples. */
  rollups?: boolean;
}

export class SampleStore implements ChunkCommitter {
  private nextLaneSweepAtMs = 0;
  private readonly rollups: boolean;

  constructor(
    private readonly pool: pg.Pool,
    { rollups = true }: SampleStoreOptions = {},
  ) {
    this.rollups = rollups;
  }

  commitChunks(rows: readonly ChunkRow[], advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void> {
    return this.commitCopy(encodeCopyBinary(rows), withTRanges(advances, rows), marker);
  }

  /**
   * Stores a COPY body of chunk rows (encodeCopyBinary), its roll-ups, and advances the sessions'
   * counters, in one transaction, with `marker` written in it. Settles only once the connection has sent
   * all of `body`, or never began to, or is gone (the commit thread reuses the memory after:
   * commit-thread-body.ts), so nothing here may give up on the body early, say with a client-side
   * timeout.
   */
  commitCopy(body: Buffer, advances: readonly TimedAdvance[], marker?: CommitMarker): Promise<void> {
    const rollups = this.rollups ? rollupsOfCopyBody(body) : [];
    // A refusal leaves the client as it was: its transaction was rolled back cleanly.
    return withPooledClient(this.pool, (client) => this.commitOn(client, body, advances, rollups, marker), {
      reusableAfter: (error) => error instanceof FencedError || error instanceof OverlapError,
    });
  }

  private async commitOn(
    client: pg.PoolClient,
    body: Buffer,
    advances: readonly TimedAdvance[],
    rollups: readonly SessionRollups[],
    marker?: CommitMarker,
  ): Promise<void> {
    // What each session's roll-ups gain: all of its samples in the commit, or none (roll-ups off, or too many blocks).
    const rolledUp = new Map(rollups.map((r) => [r.sessionId, r.blocks === null ? 0 : r.samples]));
    // $1-$10 of the statement below; the roll-up parts' parameters follow them.
    const counters = [
      advances.map((a) => a.sessionId),
      advances.map((a) => a.sampleCount),
      advances.map((a) => a.lastSeq),
      advances.map((a) => a.epoch ?? null),
      marker?.laneId ?? null,
      marker?.flushId ?? null,
      advances.map((a) => a.minT),
      advances.map((a) => a.maxT),
      advances.map((a) => rolledUp.get(a.sessionId.toLowerCase()) ?? 0),
      advances.map((a) => a.firstSeq),
    ];
    const parts = insertParts(partsOf(rollups), counters.length + 1);
    try {
      if (marker && Date.now() >= this.nextLaneSweepAtMs) {
        this.nextLaneSweepAtMs = Date.now() + laneSweepIntervalMs;
        await client.query(`DELETE FROM commit_lanes WHERE committed_at < now() - interval '${staleLaneAge}'`);
      }
      await client.query('BEGIN');
      // The counters before the chunks: a session another process has taken is found before
      // any row is written, and a FencedError lets the rest of the flush commit. A chunk at or
      // below the stored lastSeq (stored already) is refused here too: the time partitions'
      // keys would not see it across days (migration 015). The marker's upsert and the roll-up
      // parts (appended, rollup-store.ts) ride along in the same statement: no round trip of
      // their own; a refused commit rolls them back with the rest.
      const { rows: advanced } = await client.query<{ id: string }>(
        `WITH marker AS (
           INSERT INTO commit_lanes (lane_id, flush_id) SELECT $5::uuid, $6::uuid WHERE $5::uuid IS NOT NULL
           ON CONFLICT (lane_id) DO UPDATE SET flush_id = excluded.flush_id, committed_at = now()),
         parts AS (${parts.sql})
         UPDATE sessions AS s
            SET sample_count = s.sample_count + a.sample_count,
                last_seq = GREATEST(s.last_seq, a.last_seq),
                first_t = LEAST(s.first_t, a.min_t),
                last_t = GREATEST(s.last_t, a.max_t),
                rollup_sample_count = s.rollup_sample_count + a.rolled_up,
                status = CASE WHEN s.status = 'created' THEN 'active' ELSE s.status END
           FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[], $7::float8[], $8::float8[], $9::bigint[], $10::bigint[])
                AS a(id, sample_count, last_seq, epoch, min_t, max_t, rolled_up, first_seq)
          WHERE s.id = a.id AND (a.epoch IS NULL OR s.producer_epoch = a.epoch)
            AND (a.first_seq IS NULL OR s.last_seq IS NULL OR a.first_seq > s.last_seq)
          RETURNING s.id`,
        [...counters, ...parts.values],
      );
      if (advanced.length < advances.length) {
        const stored = new Set(advanced.map((row) => row.id));
        await client.query('ROLLBACK');
        throw await refusal(
          client,
          advances.filter((a) => !stored.has(a.sessionId)),
        );
      }
      const copy = client.query(copyStreams.from(copyChunksSql));
      await pipeline(Readable.from([body]), copy);
      await client.query('COMMIT');
    } catch (error) {
      if (!(error instanceof FencedError)) await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  /**
   * Whether the flush of `marker` is stored. Exact only while its lane commits nothing else,
   * which is how the writer uses it: it probes before retrying the flush it is stuck on.
   */
  async isCommitted(marker: CommitMarker): Promise<boolean> {
    const { rowCount } = await this.pool.query('SELECT 1 FROM commit_lanes WHERE lane_id = $1 AND flush_id = $2', [
      marker.laneId,
      marker.flushId,
    ]);
    return rowCount !== null && rowCount > 0;
  }

  /**
   * Samples of a session with seq in [fromSeq, toSeq], and t in `times` when given, in seq
   * order, as batches. Stops early when the consumer stops iterating.
   *
   * By time, the chunks whose t range misses `times` are never read: the time index first
   * gives the seqs of the first and last chunk that may hold such samples, and the pages
   * between them skip the chunks that cannot. Samples are then picked by their own t. A chunk
   * whose t range is not known yet (chunk-time-backfill.ts) is always read.
   */
  async *readRange(sessionId: string, fromSeq: number, toSeq: number, times?: TimeRange): AsyncGenerator<SampleBatch> {
    if (times) {
      const bounds = await this.seqBoundsOf(sessionId, times);
      if (bounds === null) return;
      fromSeq = Math.max(fromSeq, bounds.firstSeq);
      toSeq = Math.min(toSeq, bounds.lastSeq);
    }
    // Empty, and must not be read: a chunk holding seqs on both sides would be cut to a negative length.
    if (fromSeq > toSeq) return;
    let after = fromSeq - 1;
    for (;;) {
      const rows = decodeCopyBinary(await copyOutOf(this.pool, chunkPageQuery(sessionId, after, toSeq, times)));
      for (const row of rows) {
        // From after the last page, not from fromSeq: the compressor may have joined chunks of
        // the last page with later ones since (chunk-compressor.ts), and what was read is not read twice.
        let batch = batchFromPayload(row.payload, row.sampleCount, row.layout, row.lastSeq).range(after + 1, toSeq);
        if (times) batch = batch.withinT(times.fromT, times.toT);
        if (batch.count > 0) yield batch;
      }
      if (rows.length < readPageChunks) return;
      after = rows[rows.length - 1].lastSeq;
    }
  }

  /**
   * The first seq of the first chunk and the last seq of the last one that may hold samples in
   * `times`, or null when none may. `min(first_seq)` rather than `min(last_seq)`: an aggregate
   * of the key's own column alone would be planned as a walk along the primary key, filtering
   * every chunk, instead of a lookup in the time index (migration 009).
   */
  private async seqBoundsOf(sessionId: string, { fromT, toT }: TimeRange): Promise<{ firstSeq: number; lastSeq: number } | null> {
    const { rows } = await this.pool.query<{ first_seq: string | null; last_seq: string | null }>({
      name: 'wavehouse-chunk-seqs-by-time',
      text: `SELECT min(first_seq) AS first_seq, max(last_seq) AS last_seq FROM sample_chunks
              WHERE session_id = $1 AND ((min_t < $3 AND max_t >= $2) OR min_t IS NULL) AND ${storedSinceCreated('$1')}`,
      values: [sessionId, fromT, toT],
    });
    const { first_seq, last_seq } = rows[0];
    return first_seq === null || last_seq === null ? null : { firstSeq: Number(first_seq), lastSeq: Number(last_seq) };
  }
}

/**
 * A session's chunks were all committed after it was created (by the database's clock both),
 * so the time partitions of before (migration 015) are skipped: the subquery is run once, before
 * the scans, and PostgreSQL prunes with its value. A producer's t says nothing of stored_at, so
 * a read by time is pruned by this alone, then by the time index within the partitions left.
 */
function storedSinceCreated(sessionIdSql: string): string {
  return `stored_at >= (SELECT created_at FROM sessions WHERE id = ${sessionIdSql})`;
}

/**
 * COPY takes no bind parameters, so the values are written into the text: the id as a
 * literal of a checked UUID (hex digits and dashes only), the seqs as checked integers, the
 * times as checked numbers (String() of a number is a float8 literal PostgreSQL reads back
 * exactly, 'Infinity' included).
 */
function chunkPageQuery(sessionId: string, afterSeq: number, toSeq: number, times?: TimeRange): string {
  if (!isSessionId(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  if (!Number.isSafeInteger(afterSeq) || !Number.isSafeInteger(toSeq)) throw new Error(`seqs must be integers: ${afterSeq}, ${toSeq}`);
  if (times && (Number.isNaN(times.fromT) || Number.isNaN(times.toT)))
    throw new Error(`times must be numbers: ${times.fromT}, ${times.toT}`);
  const byTime = times ? ` AND (min_t IS NULL OR (min_t < '${times.toT}'::float8 AND max_t >= '${times.fromT}'::float8))` : '';
  return `COPY (SELECT last_seq, sample_count, payload_layout, payload FROM sample_chunks
                 WHERE session_id = '${sessionId}' AND last_seq > ${afterSeq} AND first_seq <= ${toSeq}${byTime}
                   AND ${storedSinceCreated(`'${sessionId}'`)}
                 ORDER BY last_seq LIMIT ${readPageChunks}) TO STDOUT (FORMAT binary)`;
}
