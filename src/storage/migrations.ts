/**
 * Versioned SQL migrations (src/storage/migrations/NNN_name.sql), applied in order, each in
 * its own transaction, under a session-level advisory lock so that instances starting at
 * once apply each migration exactly once. A file whose first line is `-- wavehouse: no
 * transaction` runs a statement at a time outside any transaction instead, for what cannot run
 * in one (CREATE INDEX CONCURRENTLY, which keeps a big table writable while it builds); its
 * statements must be safe to run again, as a failure leaves the ones before it done (a DO
 * block is one statement, so one that checks the catalog first can be).
 * Then, under the same lock, the chunks stored without their t range get it
 * (chunk-time-backfill.ts).
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { type BackfillOutcome, backfillChunkTimes } from './chunk-time-backfill.ts';
import { withPooledClient } from './database.ts';

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Arbitrary but fixed: the advisory lock key every Wavehouse instance agrees on. */
const migrationLockKey = 0x57415645;
/** How often an instance that waits for another's migrations tries the lock again. */
const lockRetryMs = 100;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export interface MigrationOutcome {
  /** The names of the migrations applied now. */
  applied: string[];
  chunkTimes: BackfillOutcome;
}

const noTransactionMarker = /^-- wavehouse: no transaction\n/;

/**
 * A no-transaction file's statements: it ends each with `;` at the end of a line, and has no
 * other outside a `$$`-quoted body (a DO block's, whose statements run as one).
 */
export function statementsOf(sql: string): string[] {
  const statements: string[] = [];
  let current = '';
  for (const line of sql.split('\n')) {
    current += `${line}\n`;
    const inQuotedBody = (current.match(/\$\$/g)?.length ?? 0) % 2 === 1;
    if (!inQuotedBody && /;\s*$/.test(line)) {
      statements.push(current);
      current = '';
    }
  }
  statements.push(current);
  return statements.filter((statement) => statement.replace(/--.*$/gm, '').trim() !== '');
}

async function apply(client: pg.PoolClient, migration: Migration): Promise<void> {
  const record = () => client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
  if (noTransactionMarker.test(migration.sql)) {
    for (const statement of statementsOf(migration.sql)) await client.query(statement);
    await record();
    return;
  }
  await client.query('BEGIN');
  try {
    await client.query(migration.sql);
    await record();
    await client.query('COMMIT');
  } catch (error) {
    // The migration's own error is the one to report, not a ROLLBACK that fails after it.
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  }
}

export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(migrationsDir)).filter((file) => /^\d+_.+\.sql$/.test(file)).sort();
  // Two branches that each add "the next" migration give two files one number; the second
  // would never run where the first had (schema_migrations is keyed by the number).
  const numbers = files.map((file) => Number.parseInt(file, 10));
  const repeated = numbers.find((number, i) => numbers.indexOf(number) !== i);
  if (repeated !== undefined) throw new Error(`two migrations are numbered ${repeated}: ${files.join(', ')}`);
  return Promise.all(
    files.map(async (file) => ({
      version: Number.parseInt(file, 10),
      name: file.replace(/\.sql$/, ''),
      sql: await readFile(path.join(migrationsDir, file), 'utf8'),
    })),
  );
}

/**
 * Waits for the migration lock by trying it again and again rather than with pg_advisory_lock:
 * a statement that waits holds a snapshot all the while, and CREATE INDEX CONCURRENTLY in the
 * instance holding the lock waits for every such snapshot to go, which would be a deadlock.
 */
async function takeMigrationLock(client: pg.PoolClient): Promise<void> {
  for (;;) {
    const { rows } = await client.query<{ taken: boolean }>('SELECT pg_try_advisory_lock($1) AS taken', [migrationLockKey]);
    if (rows[0].taken) return;
    await sleep(lockRetryMs);
  }
}

/** Applies what is missing, then fills in the chunks' t ranges that are missing. */
export async function migrate(pool: pg.Pool): Promise<MigrationOutcome> {
  const migrations = await loadMigrations();
  return withPooledClient(pool, async (client) => {
    try {
      await takeMigrationLock(client);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((row) => row.version));
      const appliedNow: string[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await apply(client, migration);
        appliedNow.push(migration.name);
      }
      return { applied: appliedNow, chunkTimes: await backfillChunkTimes(client) };
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => undefined);
    }
  });
}
