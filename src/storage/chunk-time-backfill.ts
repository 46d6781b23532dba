/**
 * Fills in the t range of chunks stored without one (migration 008): those written before it,
 * and those an instance of the previous version writes during a rolling deploy. Their payloads
 * are binary float64 columns, which SQL cannot read, so this decodes them here.
 *
 * It works through the partial index of such chunks (migration 009) in key order, a batch at a
 * time, each batch one short statement of its own: no lock is held on the table beyond a
 * batch's rows, and the writer goes on meanwhile. Until a chunk is filled in, reads by time
 * read it whatever their range (sample-store.ts): the backfill makes them faster, never right.
 * The sessions of a batch get their firstT and lastT widened in the same statement. A chunk
 * whose payload cannot be decoded is left as it is, and counted: reading it fails in any case.
 */
import type pg from 'pg';
import { batchFromPayload, type PayloadLayout } from './chunk-codec.ts';

/** Chunks a batch: up to ~256 x 64 KiB of payload in memory, and a statement of a few milliseconds' locks. */
const batchChunks = 256;
/**
 * A writer's commit and a batch lock sessions' rows each in an order of their own, so they
 * may deadlock; PostgreSQL then cancels one of them. A batch changes nothing until it commits,
 * so it is simply run again.
 */
const deadlockRetries = 5;

const selectColumns = 'SELECT session_id, last_seq, sample_count, payload_layout, payload FROM sample_chunks';
// Two statements rather than one with `$1 IS NULL OR ...`: an OR would not bound the index
// scan, and each batch would walk again the entries of the rows filled before it.
const firstBatch = `${selectColumns} WHERE min_t IS NULL ORDER BY session_id, last_seq LIMIT ${batchChunks}`;
const nextBatch = `${selectColumns} WHERE min_t IS NULL AND (session_id, last_seq) > ($1::uuid, $2::bigint)
                    ORDER BY session_id, last_seq LIMIT ${batchChunks}`;

const fillBatch = `WITH filled AS (
   UPDATE sample_chunks AS c SET min_t = f.min_t, max_t = f.max_t
     FROM unnest($1::uuid[], $2::bigint[], $3::float8[], $4::float8[]) AS f(session_id, last_seq, min_t, max_t)
    WHERE c.session_id = f.session_id AND c.last_seq = f.last_seq AND c.min_t IS NULL
    RETURNING c.session_id, f.min_t, f.max_t)
 UPDATE sessions AS s SET first_t = LEAST(s.first_t, f.min_t), last_t = GREATEST(s.last_t, f.max_t)
   FROM (SELECT session_id, min(min_t) AS min_t, max(max_t) AS max_t FROM filled GROUP BY session_id) AS f
  WHERE s.id = f.session_id`;

interface UnknownChunk {
  session_id: string;
  last_seq: string;
  sample_count: number;
  payload_layout: PayloadLayout;
  payload: Buffer;
}

export interface BackfillOutcome {
  filled: number;
  undecodable: number;
}

interface Position {
  sessionId: string;
  lastSeq: string;
}

async function unknownChunksAfter(client: pg.ClientBase, after: Position | null): Promise<UnknownChunk[]> {
  const { rows } = await (after === null
    ? client.query<UnknownChunk>(firstBatch)
    : client.query<UnknownChunk>(nextBatch, [after.sessionId, after.lastSeq]));
  return rows;
}

export async function backfillChunkTimes(client: pg.ClientBase): Promise<BackfillOutcome> {
  const outcome: BackfillOutcome = { filled: 0, undecodable: 0 };
  let after: Position | null = null;
  for (;;) {
    const rows = await unknownChunksAfter(client, after);
    if (rows.length === 0) return outcome;
    const filled: Array<{ sessionId: string; lastSeq: string; min: number; max: number }> = [];
    for (const row of rows) {
      try {
        const { min, max } = batchFromPayload(row.payload, row.sample_count, row.payload_layout, Number(row.last_seq)).tRange;
        filled.push({ sessionId: row.session_id, lastSeq: row.last_seq, min, max });
      } catch {
        outcome.undecodable++;
      }
    }
    const values = [filled.map((f) => f.sessionId), filled.map((f) => f.lastSeq), filled.map((f) => f.min), filled.map((f) => f.max)];
    for (let attempt = 1; ; attempt++) {
      try {
        await client.query(fillBatch, values);
        break;
      } catch (error) {
        if ((error as { code?: string }).code !== '40P01' || attempt > deadlockRetries) throw error;
      }
    }
    outcome.filled += filled.length;
    after = { sessionId: rows[rows.length - 1].session_id, lastSeq: rows[rows.length - 1].last_seq };
  }
}
