/**
 * Soft delete, restore and purge of sessions (migration 013). A deleted session keeps its rows
 * for a grace, in which every lookup skips it (session-repository.ts) and an admin may restore
 * it; after the grace the purge deletes its chunks, roll-ups and row.
 *
 * Restore and purge are decided on the database's clock, `now()`, never a process's: a restore
 * takes a session deleted less than a grace ago, a purge batch one deleted more than a grace
 * ago, under the session row's lock. So a restore can never bring back a session a purge has
 * begun to empty, whatever the instances' clocks say.
 */
import type pg from 'pg';
import { withPooledClient } from './database.ts';
import { KeyTakenError } from './session-creates.ts';
import { type SessionRecord, type SessionRow, sessionColumns, toRecord } from './session-record.ts';
import { isSessionId } from './session-repository.ts';

const markDeleted = `UPDATE sessions SET deleted_at = now() WHERE id = $1 AND deleted_at IS NULL RETURNING ${sessionColumns}`;
// A session not deleted is restored as it is (a retried restore answers the same).
const restore = `UPDATE sessions SET deleted_at = NULL
  WHERE id = $1 AND (deleted_at IS NULL OR deleted_at > now() - $2 * interval '1 millisecond') RETURNING ${sessionColumns}`;
const findHolder = 'SELECT id FROM sessions WHERE key = $1 AND deleted_at IS NULL';
const purgeable = `SELECT id FROM sessions WHERE deleted_at < now() - $1 * interval '1 millisecond' ORDER BY deleted_at LIMIT $2`;
// NO KEY UPDATE: it waits for (and holds off) a restore, but not the foreign-key checks of the
// roll-up compactor's inserts, which would otherwise deadlock with the roll-up deletes below.
// SKIP LOCKED: a session another instance is purging is left to it.
const claim = `SELECT key FROM sessions WHERE id = $1 AND deleted_at < now() - $2 * interval '1 millisecond'
  FOR NO KEY UPDATE SKIP LOCKED`;
// By primary key, from a bounded subquery: each batch reads and locks only the rows it deletes.
const deleteChunks = `DELETE FROM sample_chunks WHERE (session_id, last_seq) IN
  (SELECT session_id, last_seq FROM sample_chunks WHERE session_id = $1 LIMIT $2)`;
const deleteRollups = `DELETE FROM sample_rollups WHERE (session_id, resolution_ms, block_t, part) IN
  (SELECT session_id, resolution_ms, block_t, part FROM sample_rollups WHERE session_id = $1 LIMIT $2)`;

/** One purge batch's outcome: rows deleted, and whether the session itself went (then its key, for the audit). */
export interface PurgeStep {
  readonly rows: number;
  readonly purged: boolean;
  readonly key: string | null;
}

export class SessionDeletes {
  constructor(private readonly pool: pg.Pool) {}

  /** The session with this id, deleted or not; null if there is none (purged, or never was). */
  async findAny(id: string): Promise<SessionRecord | null> {
    if (!isSessionId(id)) return null;
    const { rows } = await this.pool.query<SessionRow>(`SELECT ${sessionColumns} FROM sessions WHERE id = $1`, [id]);
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  /** Marks the session deleted and returns it, with its deletedAt; null if there is no session not deleted with this id. */
  async markDeleted(id: string): Promise<SessionRecord | null> {
    const { rows } = await this.pool.query<SessionRow>(markDeleted, [id]);
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  /**
   * Brings a session deleted less than `graceMs` ago back (or answers one not deleted as it
   * is); null if there is none. A KeyTakenError if its key is held by a session created since.
   */
  async restore(id: string, graceMs: number): Promise<SessionRecord | null> {
    try {
      const { rows } = await this.pool.query<SessionRow>(restore, [id, graceMs]);
      return rows.length === 0 ? null : toRecord(rows[0]);
    } catch (error) {
      if ((error as { code?: unknown }).code !== '23505') throw error;
      const key = (await this.findAny(id))?.key ?? '';
      const holder = await this.pool.query<{ id: string }>(findHolder, [key]);
      throw new KeyTakenError(key, holder.rows[0]?.id ?? null);
    }
  }

  /** Up to `limit` sessions deleted more than `graceMs` ago, the longest deleted first. */
  async purgeable(graceMs: number, limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(purgeable, [graceMs, limit]);
    return rows.map((row) => row.id);
  }

  /**
   * One batch of a session's purge, one short transaction: up to `limit` chunks, else up to
   * `limit` roll-up parts, else the row itself (its cascade finding nothing left, or what a
   * late writer added). Nothing is done if the session is restored, gone, or being purged by
   * another instance.
   */
  purgeStep(id: string, graceMs: number, limit: number): Promise<PurgeStep> {
    return withPooledClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        const step = await this.purgeStepIn(client, id, graceMs, limit);
        await client.query('COMMIT');
        return step;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  private async purgeStepIn(client: pg.PoolClient, id: string, graceMs: number, limit: number): Promise<PurgeStep> {
    const claimed = await client.query<{ key: string | null }>(claim, [id, graceMs]);
    if (claimed.rows.length === 0) return { rows: 0, purged: false, key: null };
    const chunks = await client.query(deleteChunks, [id, limit]);
    if ((chunks.rowCount ?? 0) > 0) return { rows: chunks.rowCount ?? 0, purged: false, key: null };
    const rollups = await client.query(deleteRollups, [id, limit]);
    if ((rollups.rowCount ?? 0) > 0) return { rows: rollups.rowCount ?? 0, purged: false, key: null };
    await client.query('DELETE FROM sessions WHERE id = $1', [id]);
    return { rows: 1, purged: true, key: claimed.rows[0].key };
  }
}
