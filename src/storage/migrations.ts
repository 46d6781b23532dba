/**
 * Versioned SQL migrations (src/storage/migrations/NNN_name.sql), applied in order, each in
 * its own transaction, under a session-level advisory lock so that instances starting at
 * once apply each migration exactly once.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import { withPooledClient } from './database.ts';

const migrationsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
/** Arbitrary but fixed: the advisory lock key every Wavehouse instance agrees on. */
const migrationLockKey = 0x57415645;

export interface Migration {
  version: number;
  name: string;
  sql: string;
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

/** Applies what is missing; returns the names applied now. */
export async function migrate(pool: pg.Pool): Promise<string[]> {
  const migrations = await loadMigrations();
  return withPooledClient(pool, async (client) => {
    try {
      await client.query('SELECT pg_advisory_lock($1)', [migrationLockKey]);
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const { rows } = await client.query<{ version: number }>('SELECT version FROM schema_migrations');
      const applied = new Set(rows.map((row) => row.version));
      const appliedNow: string[] = [];
      for (const migration of migrations) {
        if (applied.has(migration.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(migration.sql);
          await client.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
          await client.query('COMMIT');
        } catch (error) {
          // The migration's own error is the one to report, not a ROLLBACK that fails after it.
          await client.query('ROLLBACK').catch(() => undefined);
          throw error;
        }
        appliedNow.push(migration.name);
      }
      return appliedNow;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [migrationLockKey]).catch(() => undefined);
    }
  });
}
