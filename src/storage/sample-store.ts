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
import type { SampleBatch } from '../samples/sample-batch.ts';
import { batchFromPayload, type ChunkRow, copyChunksSql, decodeCopyBinary, encodeCopyBinary } from './chunk-codec.ts';
import { withPooledClient } from './database.ts';
import { isSessionId } from './session-repository.ts';

export interface SessionAdvance {
  sessionId: string;
  sampleCount: number;
  lastSeq: number;
  /** The producer epoch this process holds (storage/session-repository.ts); absent: not fenced. */
  epoch?: number;
}

/** Sessions another process has taken since this one claimed them: their rows were not stored. */
export class FencedError extends Error {
  constructor(readonly sessionIds: string[]) {
    super(`sessions taken over by another process: ${sessionIds.join(', ')}`);
    this.name = 'FencedError';
  }
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

/** Chunks fetched per round trip when reading: at most ~16 x 2,000 samples in memory. */
const readPageChunks = 16;

/**
 * How often a store deletes the marker rows of lanes that stopped, and how old they must be: a
 * row is needed only while its lane has a flush whose outcome is unknown, which lasts as long
 * as the database is out of reach; a week is far beyond any outage the writer rides out.
 */
const laneSweepIntervalMs = 60 * 60 * 1000;
const staleLaneAge = '7 days';

export class SampleStore implements ChunkCommitter {
  private nextLaneSweepAtMs = 0;

  constructor(private readonly pool: pg.Pool) {}

  commitChunks(rows: readonly ChunkRow[], advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void> {
    return this.commitCopy(encodeCopyBinary(rows), advances, marker);
  }

  /**
   * Stores a COPY body of chunk rows (encodeCopyBinary) and advances the sessions' counters, in
   * one transaction, with `marker` written in it. Settles only once the connection has sent
   * all of `body`, or never began to, or is gone (the commit thread reuses the memory after:
   * commit-thread-body.ts), so nothing here may give up on the body early, say with a client-side
   * timeout.
   */
  commitCopy(body: Buffer, advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void> {
    // A FencedError leaves the client as it was: its transaction was rolled back cleanly.
    return withPooledClient(this.pool, (client) => this.commitOn(client, body, advances, marker), {
      reusableAfter: (error) => error instanceof FencedError,
    });
  }

  private async commitOn(client: pg.PoolClient, body: Buffer, advances: readonly SessionAdvance[], marker?: CommitMarker): Promise<void> {
    try {
      if (marker && Date.now() >= this.nextLaneSweepAtMs) {
        this.nextLaneSweepAtMs = Date.now() + laneSweepIntervalMs;
        await client.query(`DELETE FROM commit_lanes WHERE committed_at < now() - interval '${staleLaneAge}'`);
      }
      await client.query('BEGIN');
      // The counters before the chunks: a session another process has taken is found before
      // any row is written. That process may have stored a chunk of it with the same end as
      // one of ours; after the COPY, that would be a key violation, retried for ever, instead
      // of a FencedError that lets the rest of the flush commit. The marker's upsert rides
      // along in the same statement: no round trip of its own.
      const { rows: advanced } = await client.query<{ id: string }>(
        `WITH marker AS (
           INSERT INTO commit_lanes (lane_id, flush_id) SELECT $5::uuid, $6::uuid WHERE $5::uuid IS NOT NULL
           ON CONFLICT (lane_id) DO UPDATE SET flush_id = excluded.flush_id, committed_at = now())
         UPDATE sessions AS s
            SET sample_count = s.sample_count + a.sample_count,
                last_seq = GREATEST(s.last_seq, a.last_seq),
                status = CASE WHEN s.status = 'created' THEN 'active' ELSE s.status END
           FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::bigint[]) AS a(id, sample_count, last_seq, epoch)
          WHERE s.id = a.id AND (a.epoch IS NULL OR s.producer_epoch = a.epoch)
          RETURNING s.id`,
        [
          advances.map((a) => a.sessionId),
          advances.map((a) => a.sampleCount),
          advances.map((a) => a.lastSeq),
          advances.map((a) => a.epoch ?? null),
          marker?.laneId ?? null,
          marker?.flushId ?? null,
        ],
      );
      if (advanced.length < advances.length) {
        const stored = new Set(advanced.map((row) => row.id));
        await client.query('ROLLBACK');
        throw new FencedError(advances.map((a) => a.sessionId).filter((id) => !stored.has(id)));
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
   * Samples of a session with seq in [fromSeq, toSeq], in seq order, as batches.
   * Stops early when the consumer stops iterating.
   */
  async *readRange(sessionId: string, fromSeq: number, toSeq: number): AsyncGenerator<SampleBatch> {
    // Empty, and must not be read: a chunk holding seqs on both sides would be cut to a negative length.
    if (fromSeq > toSeq) return;
    let after = fromSeq - 1;
    for (;;) {
      const rows = decodeCopyBinary(await this.copyOut(chunkPageQuery(sessionId, after, toSeq)));
      for (const row of rows) {
        const batch = batchFromPayload(row.payload, row.sampleCount, row.layout, row.lastSeq).range(fromSeq, toSeq);
        if (batch.count > 0) yield batch;
      }
      if (rows.length < readPageChunks) return;
      after = rows[rows.length - 1].lastSeq;
    }
  }

  /** The whole output of a `COPY ... TO STDOUT`: one page of chunks, bounded by readPageChunks. */
  private copyOut(sql: string): Promise<Buffer> {
    return withPooledClient(this.pool, async (client) => {
      const pieces: Buffer[] = [];
      for await (const piece of client.query(copyStreams.to(sql))) pieces.push(piece as Buffer);
      return Buffer.concat(pieces);
    });
  }
}

/**
 * COPY takes no bind parameters, so the values are written into the text: the id as a
 * literal of a checked UUID (hex digits and dashes only), the seqs as checked integers.
 */
function chunkPageQuery(sessionId: string, afterSeq: number, toSeq: number): string {
  if (!isSessionId(sessionId)) throw new Error(`not a session id: ${sessionId}`);
  if (!Number.isSafeInteger(afterSeq) || !Number.isSafeInteger(toSeq)) throw new Error(`seqs must be integers: ${afterSeq}, ${toSeq}`);
  return `COPY (SELECT last_seq, sample_count, payload_layout, payload FROM sample_chunks
                 WHERE session_id = '${sessionId}' AND last_seq > ${afterSeq} AND first_seq <= ${toSeq}
                 ORDER BY last_seq LIMIT ${readPageChunks}) TO STDOUT (FORMAT binary)`;
}
