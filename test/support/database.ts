/**
 * A fresh PostgreSQL database per test, on the real server (TEST_DATABASE_URL, default the
 * local server's `postgres` database). Each is cloned from a template migrated once per
 * migration set, which is much faster than migrating every test's database.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { TestContext } from 'node:test';
import pg from 'pg';
import pino from 'pino';
import { createPool, withClient } from '../../src/storage/database.ts';
import { loadMigrations, migrate, statementsOf } from '../../src/storage/migrations.ts';

export const adminUrl = process.env.TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

function withDatabase(url: string, name: string): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  return parsed.toString();
}

async function templateName(): Promise<string> {
  const migrations = await loadMigrations();
  const digest = createHash('sha256')
    .update(migrations.map((m) => m.name + m.sql).join('\n'))
    .digest('hex')
    .slice(0, 12);
  return `wavehouse_template_${digest}`;
}

let template: Promise<string> | null = null;

/** Creates (once, under a lock shared by parallel test processes) the migrated template. */
function ensureTemplate(): Promise<string> {
  template ??= (async () => {
    const name = await templateName();
    await withClient(adminUrl, async (admin) => {
      await admin.query('SELECT pg_advisory_lock(4242)');
      try {
        const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
        if (rowCount === 0) {
          await admin.query(`CREATE DATABASE ${name}`);
          const pool = new pg.Pool({ connectionString: withDatabase(adminUrl, name), max: 2 });
          try {
            await migrate(pool);
          } finally {
            await pool.end();
          }
        }
      } finally {
        await admin.query('SELECT pg_advisory_unlock(4242)');
      }
    });
    return name;
  })();
  return template;
}

export interface TestDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function freshDatabase(): Promise<TestDatabase> {
  const source = await ensureTemplate();
  const name = `wavehouse_test_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name} TEMPLATE ${source}`));
  return {
    url: withDatabase(adminUrl, name),
    drop: () => withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)).then(() => undefined),
  };
}

/**
 * A new database with the migrations before `version` applied, as the runner applies them: what
 * an install of an earlier version holds, for a test of a migration over its data. Dropped
 * after the test.
 */
export async function databaseBefore(t: TestContext, version: number, poolSize = 2): Promise<pg.Pool> {
  const name = `wavehouse_before_${randomBytes(6).toString('hex')}`;
  await withClient(adminUrl, (admin) => admin.query(`CREATE DATABASE ${name}`));
  const pool = createPool(withDatabase(adminUrl, name), poolSize, pino({ level: 'silent' }));
  t.after(async () => {
    await pool.end();
    await withClient(adminUrl, (admin) => admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
  });
  await pool.query(
    'CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
  );
  for (const migration of (await loadMigrations()).filter((m) => m.version < version)) {
    if (migration.sql.startsWith('-- wavehouse: no transaction'))
      for (const statement of statementsOf(migration.sql)) await pool.query(statement);
    else await pool.query(`BEGIN; ${migration.sql}; COMMIT`);
    await pool.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
  }
  return pool;
}
