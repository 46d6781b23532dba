/** The page of sessions a listing asks for (sessions/session-listing.ts), read with the indexes of migration 006. */
import type pg from 'pg';
import { type SessionRecord, type SessionRow, sessionColumns, toRecord } from './session-record.ts';

export interface SessionFilter {
  readonly key?: string;
  readonly keyPrefix?: string;
  readonly status?: SessionRecord['status'];
  /** Exclusive bounds on createdAt. */
  readonly createdAfter?: Date;
  readonly createdBefore?: Date;
  /** The deleted sessions not purged yet instead of those not deleted. */
  readonly deleted?: boolean;
}

/** Where a page ends: the createdAt (microseconds since the epoch, as PostgreSQL keeps it) and id of its last session. */
export interface ListPosition {
  readonly createdUs: bigint;
  readonly id: string;
}

export interface SessionPage {
  readonly records: SessionRecord[];
  /** Where the next page starts, or null on the last. */
  readonly next: ListPosition | null;
}

/**
 * The first key after every key that starts with `prefix`, byte-wise as the "C" collation
 * orders them: a prefix is the range [prefix, upperBound), which the unique index reads
 * directly (LIKE would need its `_` escaped). Keys are ASCII, so the last character's
 * successor is one byte too.
 */
function upperBound(prefix: string): string {
  return prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
}

// createdAt is compared in whole microseconds, as PostgreSQL stores it: a JavaScript Date
// would round it to milliseconds, and sessions created within one would repeat or go missing
// across pages. Deleted sessions are listed only when asked for, by a statement of their own:
// naming deleted_at lets a key or prefix read the partial unique index of migration 013, and a
// listing of deleted ones the partial index of the few not purged yet.
const listSessions = (deleted: 'deleted_at IS NULL' | 'deleted_at IS NOT NULL') => `
  SELECT ${sessionColumns}, (extract(epoch FROM created_at) * 1000000)::bigint AS created_us
    FROM sessions
   WHERE ${deleted}
     AND ($1::text IS NULL OR key = $1)
     AND ($2::text IS NULL OR (key >= $2 AND key < $3))
     AND ($4::text IS NULL OR status = $4)
     AND ($5::timestamptz IS NULL OR created_at > $5)
     AND ($6::timestamptz IS NULL OR created_at < $6)
     AND ($7::bigint IS NULL OR (created_at, id) < ('epoch'::timestamptz + $7::bigint * interval '1 microsecond', $8::uuid))
   ORDER BY created_at DESC, id DESC
   LIMIT $9`;
const liveSessions = listSessions('deleted_at IS NULL');
const deletedSessions = listSessions('deleted_at IS NOT NULL');

/** Up to `limit` sessions that match `filter`, newest first, after `after` (null: from the newest). */
export async function listSessionPage(
  pool: pg.Pool,
  filter: SessionFilter,
  limit: number,
  after: ListPosition | null,
): Promise<SessionPage> {
  const prefix = filter.keyPrefix === undefined || filter.keyPrefix === '' ? null : filter.keyPrefix;
  const statement = filter.deleted === true ? deletedSessions : liveSessions;
  const { rows } = await pool.query<SessionRow & { created_us: string }>(statement, [
    filter.key ?? null,
    prefix,
    prefix === null ? null : upperBound(prefix),
    filter.status ?? null,
    filter.createdAfter ?? null,
    filter.createdBefore ?? null,
    after === null ? null : after.createdUs.toString(),
    after?.id ?? null,
    limit + 1,
  ]);
  const page = rows.slice(0, limit);
  const last = page.at(-1);
  return {
    records: page.map(toRecord),
    next: rows.length > limit && last !== undefined ? { createdUs: BigInt(last.created_us), id: last.id } : null,
  };
}
