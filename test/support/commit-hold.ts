/**
 * Holds the writer's commits back on a connection of the test's own: a SHARE lock on the
 * chunks table, which every COPY waits on while reads go on. So a test keeps an HTTP ingest
 * request in flight (or the write queue full) for exactly as long as it needs, waiting for
 * conditions rather than for a batch to age.
 */
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import pg from 'pg';
import { eventually } from './eventually.ts';

export interface CommitHold {
  /** Resolves once `count` of the writer's commits wait on the hold. */
  waiting(count?: number): Promise<void>;
  /** Lets the commits go. Idempotent. */
  release(): Promise<void>;
}

export async function holdCommits(t: Pick<TestContext, 'after'>, databaseUrl: string): Promise<CommitHold> {
  const client = new pg.Client({ connectionString: databaseUrl });
  // Dropping the database at teardown ends this connection if a failed test left it open.
  client.on('error', () => undefined);
  await client.connect();
  let released = false;
  const release = async () => {
    if (released) return;
    released = true;
    await client.query('COMMIT');
    await client.end();
  };
  t.after(() => release().catch(() => undefined));
  await client.query('BEGIN');
  await client.query('LOCK TABLE sample_chunks IN SHARE MODE');
  return {
    release,
    waiting: (count = 1) =>
      eventually(async () => {
        const { rows } = await client.query<{ waiting: number }>(
          `SELECT count(*)::int AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'wavehouse-writer' AND wait_event_type = 'Lock'`,
        );
        assert.equal(rows[0].waiting, count, 'commits waiting on the hold');
      }),
  };
}
