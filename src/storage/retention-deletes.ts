/**
 * What retention deletes row by row, where dropping a partition cannot serve: the chunks of a
 * session with a retention of its own (sessions.retention_days, shorter than RETENTION_DAYS),
 * and roll-ups past ROLLUP_RETENTION_DAYS (sample_rollups is not partitioned). Each DELETE takes
 * at most `batchRows` rows and is a statement of its own: it holds the row locks of one batch
 * for milliseconds and never a table lock beyond ROW EXCLUSIVE, which writes pass.
 */
import type pg from 'pg';
import { raiseRetentionGeneration } from './chunk-partitions.ts';
import { blockSpanOf, rollupResolutionsMs } from './rollup-summaries.ts';

export interface DeleteBudget {
  /** Rows a DELETE takes. */
  batchRows: number;
  /** Statements a call may run; what is left waits for the next round. */
  maxBatches: number;
}

/**
 * Runs a DELETE and, in the same statement, raises the retention generation when it removed a
 * row (migration 017), so that no read cached before it is served after it; the rows it deleted.
 */
async function deletingRows(client: pg.ClientBase, deleteSql: string, values: unknown[]): Promise<number> {
  const { rows } = await client.query<{ deleted: number }>(
    `WITH gone AS (${deleteSql} RETURNING 1),
          raised AS (${raiseRetentionGeneration} WHERE EXISTS (SELECT FROM gone))
     SELECT count(*)::int AS deleted FROM gone`,
    values,
  );
  return rows[0].deleted;
}

/**
 * Deletes the chunks of sessions with a retention of their own that were stored more than
 * that many days ago. `stored_at < now() - ...` is stable within the statement, so PostgreSQL
 * prunes the partitions it cannot touch before running it.
 */
export async function deleteSessionExpired(client: pg.ClientBase, { batchRows, maxBatches }: DeleteBudget): Promise<number> {
  // Only sessions with something to delete: a round's budget spent on sessions with nothing
  // expired would leave those after the first maxBatches never reached, round after round.
  const { rows: sessions } = await client.query<{ id: string; retention_days: number }>(
    `SELECT id, retention_days FROM sessions AS s
      WHERE retention_days IS NOT NULL
        AND EXISTS (SELECT FROM sample_chunks AS c WHERE c.session_id = s.id AND c.stored_at < now() - s.retention_days * interval '1 day')
      ORDER BY id`,
  );
  let deleted = 0;
  let batches = 0;
  for (const session of sessions) {
    for (;;) {
      if (batches++ >= maxBatches) return deleted;
      const rowCount = await deletingRows(
        client,
        `DELETE FROM sample_chunks
          WHERE session_id = $1 AND stored_at < now() - $2 * interval '1 day'
            AND last_seq IN (SELECT last_seq FROM sample_chunks
                              WHERE session_id = $1 AND stored_at < now() - $2 * interval '1 day'
                              ORDER BY last_seq LIMIT $3)`,
        [session.id, session.retention_days, batchRows],
      );
      deleted += rowCount;
      if (rowCount < batchRows) break;
    }
  }
  return deleted;
}

/**
 * Deletes the roll-up parts whose block ended `retentionDays` days before now or earlier, by
 * their t (epoch ms): roll-ups have no commit time, and a block holds many commits'. Pending
 * parts are left for the compactor, which rolls them into the coarser resolutions first; their
 * folds go at a later round. Each batch reads only the parts it deletes, from the index of
 * migration 018, however many sessions and parts are kept.
 */
export async function deleteExpiredRollups(
  client: pg.ClientBase,
  nowMs: number,
  retentionDays: number,
  { batchRows, maxBatches }: DeleteBudget,
): Promise<number> {
  const horizonT = nowMs - retentionDays * 86_400_000;
  let deleted = 0;
  for (const resolutionMs of rollupResolutionsMs) {
    const blockBefore = horizonT - blockSpanOf(resolutionMs);
    for (let batch = 0; batch < maxBatches; batch++) {
      const rowCount = await deletingRows(
        client,
        `DELETE FROM sample_rollups WHERE ctid = ANY(ARRAY(
           SELECT ctid FROM sample_rollups WHERE resolution_ms = $1 AND block_t <= $2 AND NOT pending LIMIT $3))`,
        [resolutionMs, blockBefore, batchRows],
      );
      deleted += rowCount;
      if (rowCount < batchRows) break;
    }
  }
  return deleted;
}
