/**
 * Why a commit refuses a session's rows (sample-store.ts): another process has taken the
 * session, or the rows are stored already.
 */
import type pg from 'pg';

/** What the commit knows of a session whose counters it could not move. */
interface RefusedAdvance {
  sessionId: string;
  epoch?: number;
}

/**
 * Chunks that do not start above their session's stored lastSeq: a chunk stored twice. Each
 * time partition has its own key (migration 015), so the commit refuses them itself; like the
 * key violation it stands for, the flush is retried, never half stored.
 */
export class OverlapError extends Error {
  constructor(readonly sessionIds: string[]) {
    super(`chunks at or below the stored lastSeq of sessions ${sessionIds.join(', ')}`);
    this.name = 'OverlapError';
  }
}

/** Sessions another process has taken since this one claimed them: their rows were not stored. */
export class FencedError extends Error {
  constructor(readonly sessionIds: string[]) {
    super(`sessions taken over by another process: ${sessionIds.join(', ')}`);
    this.name = 'FencedError';
  }
}

/**
 * Why the commit did not move the counters of `refused`: an OverlapError if any of them is still
 * this process's to write (its epoch holds), else a FencedError.
 */
export async function refusal(client: pg.ClientBase, refused: readonly RefusedAdvance[]): Promise<Error> {
  const { rows } = await client.query<{ id: string }>(
    `SELECT s.id FROM sessions AS s JOIN unnest($1::uuid[], $2::bigint[]) AS a(id, epoch) ON s.id = a.id
      WHERE a.epoch IS NULL OR s.producer_epoch = a.epoch`,
    [refused.map((a) => a.sessionId), refused.map((a) => a.epoch ?? null)],
  );
  if (rows.length > 0) return new OverlapError(rows.map((row) => row.id));
  return new FencedError(refused.map((a) => a.sessionId));
}
