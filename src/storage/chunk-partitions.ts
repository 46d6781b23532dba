/**
 * The time partitions of sample_chunks (migration 015): a partition per UTC day of stored_at,
 * the chunk's commit time, plus the legacy table (everything stored before the migration's cut)
 * and a DEFAULT partition for a chunk whose day has no partition yet. The retention job
 * (maintenance/retention-job.ts) creates the days ahead and drops the expired ones with these.
 *
 * Locks, which decide what ingest feels:
 * - A day is created as a table of its own, filled with its rows from the DEFAULT partition if
 *   there are any, then ATTACHed: ATTACH takes SHARE UPDATE EXCLUSIVE on the parent, which
 *   writes pass (CREATE TABLE ... PARTITION OF would take ACCESS EXCLUSIVE), and ACCESS
 *   EXCLUSIVE on the DEFAULT partition, which every read of the parent waits behind: it too
 *   waits at most `lockTimeoutMs` for its locks, and the next round tries again (days are made
 *   PARTITIONS_AHEAD_DAYS ahead, so a few rounds late cost nothing).
 * - An expired partition is DETACHed, which takes ACCESS EXCLUSIVE on the parent for the
 *   milliseconds of a catalog change, then DROPped as a table of its own: its files, gigabytes
 *   for a busy day, are unlinked at that commit, with the parent no longer locked (a DROP of
 *   the partition itself would hold the parent's lock through the unlink). While the DETACH
 *   waits for its lock, ingest waits behind it, so it waits at most `lockTimeoutMs`, and one
 *   that does not get the lock in time is tried again by the next round. DETACH ...
 *   CONCURRENTLY would take a weaker lock, but PostgreSQL refuses it while a DEFAULT partition
 *   exists.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type pg from 'pg';

export const dayMs = 86_400_000;
/** How long a drop or an attach waits for its locks, and so the longest it makes a commit or a read wait: the bar is 100 ms. */
export const lockTimeoutMs = 50;
const lockNotAvailable = '55P03';

const isLockTimeout = (error: unknown) => (error as { code?: string }).code === lockNotAvailable;

export interface ChunkPartition {
  name: string;
  /** Its bounds in epoch ms of stored_at: -Infinity for MINVALUE. Both null for the DEFAULT partition. */
  from: number | null;
  to: number | null;
  /** The planner's row count, no scan: what a drop reports as deleted. */
  estimatedChunks: number;
}

/** A bound of a partition's FOR VALUES in epoch ms, read back by PostgreSQL in the DateStyle it was written in. */
function boundSql(literal: string): string {
  return `CASE ${literal} WHEN 'MINVALUE' THEN '-Infinity'::float8 WHEN 'MAXVALUE' THEN 'Infinity'::float8
          ELSE (extract(epoch FROM btrim(${literal}, '''')::timestamptz) * 1000)::float8 END`;
}

export async function listPartitions(client: pg.ClientBase | pg.Pool): Promise<ChunkPartition[]> {
  const { rows } = await client.query<{ name: string; from: number | null; to: number | null; tuples: number }>(
    `SELECT name, ${boundSql('m[1]')} AS from, ${boundSql('m[2]')} AS to, tuples
       FROM (SELECT c.relname AS name, greatest(c.reltuples, 0)::float8 AS tuples,
                    regexp_match(pg_get_expr(c.relpartbound, c.oid), '^FOR VALUES FROM \\((.+)\\) TO \\((.+)\\)$') AS m
               FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
              WHERE i.inhparent = 'sample_chunks'::regclass) AS p
      ORDER BY 2 NULLS LAST`,
  );
  return rows.map((row) => ({ name: row.name, from: row.from, to: row.to, estimatedChunks: row.tuples }));
}

/** The name of the partition of the UTC day starting at `dayStartMs`: sample_chunks_p20261207. */
export function dayPartitionName(dayStartMs: number): string {
  return `sample_chunks_p${new Date(dayStartMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
}

function literal(ms: number): string {
  return `'${new Date(ms).toISOString()}'`;
}

/**
 * Creates the partition of one UTC day, moving into it the chunks the DEFAULT partition holds
 * for that day, in one transaction: a read sees them in one place or the other, never both.
 */
async function createDay(client: pg.ClientBase, dayStartMs: number): Promise<void> {
  const name = dayPartitionName(dayStartMs);
  const [from, to] = [literal(dayStartMs), literal(dayStartMs + dayMs)];
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    await client.query(`CREATE TABLE ${name} (LIKE sample_chunks INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE)`);
    await client.query(`ALTER TABLE ${name} ADD PRIMARY KEY (session_id, last_seq)`);
    await client.query(`WITH moved AS (DELETE FROM sample_chunks_default WHERE stored_at >= ${from} AND stored_at < ${to} RETURNING *)
                        INSERT INTO ${name} SELECT * FROM moved`);
    await client.query(`ALTER TABLE sample_chunks ATTACH PARTITION ${name} FOR VALUES FROM (${from}) TO (${to})`);
    await client.query('COMMIT');
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export interface CreatedPartitions {
  created: number;
  /** Days whose ATTACH did not get its locks within lockTimeoutMs: the next round tries again. */
  deferred: number;
}

/**
 * Creates the day partitions from today through `aheadDays` days ahead, and those of any day
 * the DEFAULT partition holds chunks of, that no partition covers yet.
 */
export async function ensurePartitions(client: pg.ClientBase, nowMs: number, aheadDays: number): Promise<CreatedPartitions> {
  const partitions = await listPartitions(client);
  const covered = (day: number) => partitions.some((p) => p.from !== null && p.to !== null && p.from < day + dayMs && p.to > day);
  const today = Math.floor(nowMs / dayMs) * dayMs;
  const { rows } = await client.query<{ day: number }>(
    `SELECT DISTINCT (floor(extract(epoch FROM stored_at) / 86400) * ${dayMs})::float8 AS day FROM sample_chunks_default`,
  );
  const days = new Set([...Array.from({ length: aheadDays + 1 }, (_, i) => today + i * dayMs), ...rows.map((row) => row.day)]);
  const outcome = { created: 0, deferred: 0 };
  for (const day of [...days].sort((a, b) => a - b)) {
    if (covered(day)) continue;
    try {
      await createDay(client, day);
      outcome.created++;
    } catch (error) {
      if (!isLockTimeout(error)) throw error;
      outcome.deferred++;
    }
  }
  return outcome;
}

export interface DroppedPartitions {
  partitions: number;
  chunks: number;
  /** Expired partitions whose lock was not had within lockTimeoutMs: the next round tries again. */
  deferred: number;
  /** Spent detaching, tries and pauses included, and dropping the detached tables (unlinking their files). */
  detachMs: number;
  dropMs: number;
}

/**
 * Tries a DETACH this many times, `retryPauseMs` apart, before leaving it to the next round:
 * under steady ingest a commit always holds the parent, and the DETACH gets its lock only when
 * the commits in flight all end within lockTimeoutMs; each try stalls ingest at most that long.
 */
const detachTries = 10;
const retryPauseMs = 100;

/** Runs `sql` in a transaction of its own, waiting at most lockTimeoutMs for its locks. False when that ran out. */
async function underLockTimeout(client: pg.ClientBase, sql: string): Promise<boolean> {
  await client.query('BEGIN');
  try {
    await client.query(`SET LOCAL lock_timeout = ${lockTimeoutMs}`);
    await client.query(sql);
    await client.query('COMMIT');
    return true;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (!isLockTimeout(error)) throw error;
    return false;
  }
}

/** Raises the retention generation (migration 017): in the transaction of anything that removes stored samples or roll-ups. */
export const raiseRetentionGeneration = 'UPDATE sample_retention SET generation = generation + 1';

async function detach(client: pg.ClientBase, name: string): Promise<boolean> {
  for (let attempt = 1; ; attempt++) {
    // The samples leave every read with the DETACH, so the retention generation moves with it (migration 017).
    const sql = `ALTER TABLE sample_chunks DETACH PARTITION ${name}; ${raiseRetentionGeneration}`;
    if (await underLockTimeout(client, sql)) return true;
    if (attempt === detachTries) return false;
    await sleep(retryPauseMs);
  }
}

/**
 * Drops every partition whose stored_at range ended `retentionDays` days before `nowMs` or
 * earlier: DETACHed first, a catalog change, then the detached table DROPped, whose files are
 * unlinked at commit, with no lock on the parent by then. A detached table a round left (its
 * DROP timed out, or the round failed between) is dropped by the next.
 */
export async function dropExpired(client: pg.ClientBase, nowMs: number, retentionDays: number): Promise<DroppedPartitions> {
  const horizon = nowMs - retentionDays * dayMs;
  const expired = (await listPartitions(client)).filter((p) => p.to !== null && p.to <= horizon);
  const dropped = { partitions: 0, chunks: 0, deferred: 0, detachMs: 0, dropMs: 0 };
  const detachStarted = performance.now();
  for (const partition of expired) {
    if (await detach(client, partition.name)) {
      dropped.partitions++;
      dropped.chunks += partition.estimatedChunks;
    } else dropped.deferred++;
  }
  dropped.detachMs = performance.now() - detachStarted;
  const dropStarted = performance.now();
  const { rows: detached } = await client.query<{ name: string }>(
    `SELECT relname AS name FROM pg_class
      WHERE relname ~ '^sample_chunks_(p[0-9]{8}|legacy)$' AND relkind = 'r' AND NOT relispartition
        AND relnamespace = current_schema()::regnamespace`,
  );
  for (const { name } of detached) await underLockTimeout(client, `DROP TABLE ${name}`);
  dropped.dropMs = performance.now() - dropStarted;
  return dropped;
}
