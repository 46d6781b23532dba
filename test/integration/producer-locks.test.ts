import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test, type TestContext } from 'node:test';
import pino from 'pino';
import { withClient } from '../../src/storage/database.ts';
import { ProducerLocks, sessionLockKey } from '../../src/storage/producer-locks.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

const log = pino({ level: 'silent' });

async function database(t: TestContext): Promise<string> {
  const { url, drop } = await freshDatabase();
  t.after(drop);
  return url;
}

/** The pids of this database's `wavehouse-locks` backends. */
async function lockBackends(url: string): Promise<number[]> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number }>(
      "SELECT pid FROM pg_stat_activity WHERE application_name = 'wavehouse-locks' AND datname = current_database() ORDER BY pid",
    );
    return rows.map((row) => row.pid);
  });
}

/** Which of `sessionIds` another connection could lock now: none, if their holder really holds them. */
async function lockableElsewhere(url: string, sessionIds: Iterable<string>): Promise<string[]> {
  const ids = [...sessionIds];
  return withClient(url, async (client) => {
    await client.query('BEGIN');
    try {
      const { rows } = await client.query<{ id: string }>(
        'SELECT id FROM unnest($1::text[], $2::bigint[]) AS s(id, key) WHERE pg_try_advisory_xact_lock(key)',
        [ids, ids.map(sessionLockKey)],
      );
      return rows.map((row) => row.id);
    } finally {
      await client.query('ROLLBACK');
    }
  });
}

/** The advisory locks of this database, by holding backend's pid. */
async function advisoryLockCounts(url: string): Promise<Map<number, number>> {
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ pid: number; locks: number }>(
      "SELECT pid, count(*)::int AS locks FROM pg_locks WHERE locktype = 'advisory' AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted GROUP BY pid",
    );
    return new Map(rows.map((row) => [row.pid, row.locks]));
  });
}

describe('producer locks', () => {
  test('a lock connection killed during a burst of acquires: every lock reported held is held in PostgreSQL', { timeout: 30_000 }, async (t) => {
    const url = await database(t);
    const lost: string[] = [];
    const locks = new ProducerLocks(url, log, (sessionId) => lost.push(sessionId));
    t.after(() => locks.close());

    const before = Array.from({ length: 20 }, () => randomUUID());
    for (const id of before) assert.equal(await locks.tryAcquire(id), true);
    const [killed] = await lockBackends(url);
    assert.ok(killed !== undefined);

    const burst = Array.from({ length: 200 }, () => randomUUID());
    const outcomes = burst.map((id) => locks.tryAcquire(id).then((locked) => ({ id, locked }), () => ({ id, locked: false })));
    await withClient(url, (admin) => admin.query('SELECT pg_terminate_backend($1)', [killed]));
    const acquired = [...before, ...(await Promise.all(outcomes)).filter((o) => o.locked).map((o) => o.id)];
    assert.ok(acquired.length > before.length, 'some of the burst went through after the connection was killed');

    await eventually(async () => {
      const backends = await lockBackends(url);
      assert.equal(backends.length, 1, 'one lock connection again');
      assert.notEqual(backends[0], killed);
    }, { timeoutMs: 10_000 });
    const held = acquired.filter((id) => !lost.includes(id));
    await eventually(async () => assert.deepEqual(await lockableElsewhere(url, held), [], 'every lock reported held is held'), { timeoutMs: 10_000 });
    const [backend] = await lockBackends(url);
    assert.deepEqual([...(await advisoryLockCounts(url))], [[backend, held.length]], 'all held on the live lock connection, and nothing else');
    assert.deepEqual(lost, [], 'nobody else took any of them');
  });
});
