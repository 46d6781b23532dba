import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import pino from 'pino';
import { withClient } from '../../src/storage/database.ts';
import { ProducerLocks, sessionLockKey } from '../../src/storage/producer-locks.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const log = pino({ level: 'silent' });

/**
 * A fresh database and what `start` opens on it, closed after the test in the order given,
 * before the database is dropped (so no restore is left reconnecting to a dropped database).
 */
async function setUp<T extends Record<string, ProducerLocks | TcpProxy>>(
  t: TestContext,
  start: (url: string) => Promise<T> | T,
): Promise<T & { url: string }> {
  const { url, drop } = await freshDatabase();
  const parts = await start(url);
  t.after(async () => {
    for (const part of Object.values(parts)) await part.close();
    await drop();
  });
  return { ...parts, url };
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
      "SELECT pid, count(*)::int AS locks FROM pg_locks WHERE locktype = 'advisory' " +
        'AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) AND granted GROUP BY pid',
    );
    return new Map(rows.map((row) => [row.pid, row.locks]));
  });
}

describe('producer locks', () => {
  test('a lock connection killed during a burst of acquires: every lock reported held is held in PostgreSQL', {
    timeout: 30_000,
  }, async (t) => {
    const lost: string[] = [];
    const { url, locks } = await setUp(t, (url) => ({
      locks: new ProducerLocks({ url, log, onLost: (sessionId) => lost.push(sessionId) }),
    }));

    const before = Array.from({ length: 20 }, () => randomUUID());
    for (const id of before) assert.equal(await locks.tryAcquire(id), true);
    const [killed] = await lockBackends(url);
    assert.ok(killed !== undefined);

    const burst = Array.from({ length: 200 }, () => randomUUID());
    // Sent on a connection already open, then the burst queued at once: the kill lands while
    // the burst's acquires are queued, each of them ahead of the restore the drop queues.
    const outcomes = await withClient(url, async (admin) => {
      const kill = admin.query('SELECT pg_terminate_backend($1)', [killed]);
      const queued = burst.map((id) =>
        locks.tryAcquire(id).then(
          (locked) => ({ id, locked, failed: false }),
          () => ({ id, locked: false, failed: true }),
        ),
      );
      await kill;
      return Promise.all(queued);
    });
    const acquired = [...before, ...outcomes.filter((o) => o.locked).map((o) => o.id)];
    t.diagnostic(`burst: ${outcomes.filter((o) => o.failed).length} failed with the connection, ${acquired.length - before.length} locked`);
    assert.ok(acquired.length > before.length, 'the burst took locks too');

    await eventually(
      async () => {
        const backends = await lockBackends(url);
        assert.equal(backends.length, 1, 'one lock connection again');
        assert.notEqual(backends[0], killed);
      },
      { timeoutMs: 10_000 },
    );
    const held = acquired.filter((id) => !lost.includes(id));
    await eventually(async () => assert.deepEqual(await lockableElsewhere(url, held), [], 'every lock reported held is held'), {
      timeoutMs: 10_000,
    });
    const [backend] = await lockBackends(url);
    assert.deepEqual(
      [...(await advisoryLockCounts(url))],
      [[backend, held.length]],
      'all held on the live lock connection, and nothing else',
    );
    assert.deepEqual(lost, [], 'nobody else took any of them');
  });

  describe('a lock connection whose link goes silent (no FIN, no RST)', () => {
    const heartbeatIntervalMs = 200;
    const queryTimeoutMs = 300;
    // Noticed within a heartbeat interval and a query timeout, then a reconnect and the old
    // backend's termination: the slack is for those on a loaded machine.
    const boundMs = heartbeatIntervalMs + queryTimeoutMs + 2_000;

    /** `mine` reaches the database through a proxy the test can blackhole; `theirs`, another process, directly. */
    async function behindProxy(t: TestContext, lost: string[]) {
      return setUp(t, async (url) => {
        const target = new URL(url);
        const proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
        const mine = new ProducerLocks({
          url: proxy.urlFor(url),
          log,
          onLost: (sessionId) => lost.push(sessionId),
          heartbeatIntervalMs,
          queryTimeoutMs,
        });
        // The proxy closes first: a query stuck on a silenced link then fails instead of holding up `mine`'s close.
        return { proxy, mine, theirs: new ProducerLocks({ url, log, onLost: () => undefined }) };
      });
    }

    test('is dropped by its heartbeat, its backend terminated, and its locks taken back on a new connection', {
      timeout: 30_000,
    }, async (t) => {
      const lost: string[] = [];
      const { url, mine, theirs, proxy } = await behindProxy(t, lost);
      const sessions = [randomUUID(), randomUUID()];
      for (const id of sessions) assert.equal(await mine.tryAcquire(id), true);
      const [silenced] = await lockBackends(url);

      proxy.blackhole();
      const since = Date.now();
      await eventually(
        async () => {
          const backends = await lockBackends(url);
          assert.equal(backends.length, 1, 'the silenced backend is gone and a new one is up');
          assert.notEqual(backends[0], silenced);
          assert.deepEqual([...(await advisoryLockCounts(url))], [[backends[0], sessions.length]]);
        },
        { timeoutMs: boundMs },
      );
      t.diagnostic(`locks held on a new backend ${Date.now() - since} ms after the link went silent`);

      for (const id of sessions) assert.equal(await theirs.tryAcquire(id), false);
      assert.deepEqual(lost, []);
    });

    test('a lock released meanwhile is free for another process within the bound', { timeout: 30_000 }, async (t) => {
      const lost: string[] = [];
      const { url, mine, theirs, proxy } = await behindProxy(t, lost);
      const sessionId = randomUUID();
      assert.equal(await mine.tryAcquire(sessionId), true);
      const [silenced] = await lockBackends(url);

      proxy.blackhole();
      const since = Date.now();
      // Its unlock never arrives: the old backend would keep the lock for as long as TCP lets it.
      await mine.release(sessionId);
      await eventually(async () => assert.equal(await theirs.tryAcquire(sessionId), true), { timeoutMs: boundMs });
      t.diagnostic(`free for another process ${Date.now() - since} ms after the link went silent`);
      assert.ok(!(await lockBackends(url)).includes(silenced), 'the silenced backend was terminated');
      assert.deepEqual(lost, []);
    });
  });
});
