/**
 * The audit log in PostgreSQL (migrations 005, 006): appended to in batches, listed newest
 * first. The table refuses UPDATE, DELETE and TRUNCATE itself, so nothing here could change a
 * row even by mistake; the one DELETE it lets through is retention's, of rows older than the
 * bound deleteOlderThan names for its transaction, and never of a row less than a day old.
 */
import type pg from 'pg';
import { withPooledClient } from './database.ts';

export interface AuditRow {
  at: Date;
  /** `key:<id>`, `oidc:<sub>`, `ingest:<sessionId>`, `cli`, `anonymous`. */
  actor: string;
  action: string;
  /** The session, key, token family or connector acted on, if any. */
  target: string | null;
  ip: string | null;
  requestId: string | null;
  /** `success`, or why not (a refusal code). */
  outcome: string;
  /** How many events this row stands for: more than 1 for aggregated refusals. */
  count: number;
}

export interface AuditEntry extends AuditRow {
  /** Its place in the log: later rows have greater ids. */
  id: string;
}

export interface AuditQuery {
  /** Rows older than this id (the last id of the previous page); null for the newest. */
  beforeId: string | null;
  limit: number;
  actor?: string;
  action?: string;
}

interface AuditEntryRow {
  id: string;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  ip: string | null;
  request_id: string | null;
  outcome: string;
  count: number;
}

/** The longest text of each column (migration 005's CHECKs). */
const columnLengths = { actor: 300, action: 100, target: 300, ip: 100, requestId: 200, outcome: 100 } as const;

/**
 * A text as its column takes it: cut to the column's bound, without NUL (which text cannot
 * hold). A row the table refused would fail its whole batch, and every retry of it, so the
 * log would stop; a field cut short is the lesser loss.
 */
function fit(text: string, column: keyof typeof columnLengths): string;
function fit(text: string | null, column: keyof typeof columnLengths): string | null;
function fit(text: string | null, column: keyof typeof columnLengths): string | null {
  return text === null ? null : text.replaceAll('\u0000', '').slice(0, columnLengths[column]);
}

export interface AuditRepositoryOptions {
  pool: pg.Pool;
}

export class AuditRepository {
  private readonly pool: pg.Pool;

  constructor({ pool }: AuditRepositoryOptions) {
    this.pool = pool;
  }

  /** Appends the rows in one statement. */
  async append(rows: readonly AuditRow[]): Promise<void> {
    if (rows.length === 0) return;
    await this.pool.query(
      `INSERT INTO audit_log (at, actor, action, target, ip, request_id, outcome, count)
       SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::integer[])`,
      [
        rows.map((row) => row.at),
        rows.map((row) => fit(row.actor, 'actor')),
        rows.map((row) => fit(row.action, 'action')),
        rows.map((row) => fit(row.target, 'target')),
        rows.map((row) => fit(row.ip, 'ip')),
        rows.map((row) => fit(row.requestId, 'requestId')),
        rows.map((row) => fit(row.outcome, 'outcome')),
        rows.map((row) => Math.min(Math.max(1, row.count), 2_147_483_647)),
      ],
    );
  }

  /**
   * Deletes up to `limit` rows written before `before`, oldest first, in a transaction of its
   * own that tells the table's trigger the bound. Rows less than a day old by the database's
   * clock are not asked for: the trigger would refuse them, failing the batch, if this host's
   * clock ran ahead. Rows another instance's sweep holds are skipped, not waited for.
   */
  async deleteOlderThan(before: Date, limit: number): Promise<number> {
    return withPooledClient(this.pool, async (client) => {
      await client.query('BEGIN');
      await client.query("SELECT set_config('wavehouse.audit_purge_before', $1, true)", [before.toISOString()]);
      const { rowCount } = await client.query(
        `DELETE FROM audit_log WHERE id IN (
           SELECT id FROM audit_log WHERE at < least($1, now() - interval '1 day') ORDER BY at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
        [before, limit],
      );
      await client.query('COMMIT');
      return rowCount ?? 0;
    });
  }

  /** Up to `limit` rows older than `beforeId`, newest first, of one actor or action if asked. */
  async list(query: AuditQuery): Promise<AuditEntry[]> {
    // Ordered by the column, not by the text the id is answered as (bigint is more than a JS number holds).
    const { rows } = await this.pool.query<AuditEntryRow>(
      `SELECT id::text AS id, at, actor, action, target, ip, request_id, outcome, count FROM audit_log
        WHERE ($1::bigint IS NULL OR id < $1) AND ($2::text IS NULL OR actor = $2) AND ($3::text IS NULL OR action = $3)
        ORDER BY audit_log.id DESC LIMIT $4`,
      [query.beforeId, query.actor ?? null, query.action ?? null, query.limit],
    );
    return rows.map((row) => ({
      id: row.id,
      at: row.at,
      actor: row.actor,
      action: row.action,
      target: row.target,
      ip: row.ip,
      requestId: row.request_id,
      outcome: row.outcome,
      count: row.count,
    }));
  }
}
