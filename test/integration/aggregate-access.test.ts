/**
 * The leaderboard (GET /aggregate) across the sessions of a key prefix, and who may read
 * aggregates: the session's as /data (private mode: a key that reaches the session), the
 * leaderboard as listing (sessions:read, in open mode too, narrowed to the key's prefix).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { assertProblem, bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';

async function stream(baseUrl: string, admin: string, key: string, channels: string[], rows: Array<[number, ...(number | null)[]]>) {
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(admin), { key, channels, nullable: true });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const samples = rows.map(([t, ...values], i) => ({ seq: i + 1, t, ...Object.fromEntries(channels.map((c, k) => [c, values[k]])) }));
  const posted = await call(`${baseUrl}/api/v1/sessions/${created.body.sessionId}/samples`, 'POST', bearer(created.body.ingestToken), {
    samples,
  });
  assert.equal(posted.status, 200, JSON.stringify(posted.body));
  return created.body.sessionId as string;
}

test('a leaderboard ranks the sessions of a prefix by a fn of a channel, within what the key reaches', async (t) => {
  const running = await startApp(t, { RATE_LIMIT_PER_MINUTE: '0' });
  const { key: admin } = await createKey(running.databaseUrl, { name: 'admin', role: 'admin' });
  const { key: reader } = await createKey(running.databaseUrl, { name: 'reader', role: 'reader' });
  const { key: tenant } = await createKey(running.databaseUrl, { name: 'tenant', role: 'reader', keyPrefix: 'lb/b' });
  const a = await stream(
    running.baseUrl,
    admin,
    'lb/a',
    ['temp'],
    [
      [1, 5],
      [2, 9],
      [30, 1],
    ],
  );
  const b = await stream(
    running.baseUrl,
    admin,
    'lb/b',
    ['temp', 'rh'],
    [
      [1, 7, 1],
      [2, null, 2],
      [3, 8, null],
    ],
  );
  const c = await stream(running.baseUrl, admin, 'lb/c', ['temp'], [[1, null]]);
  await stream(running.baseUrl, admin, 'lb/d', ['rh'], [[1, 100]]);
  await stream(running.baseUrl, admin, 'other/e', ['temp'], [[1, 1000]]);
  const board = (query: string, credential = reader) => call(`${running.baseUrl}/api/v1/aggregate?${query}`, 'GET', bearer(credential));

  const byMax = await board('keyPrefix=lb/&channel=temp&fn=max,count,avg&orderBy=max:desc');
  assert.equal(byMax.status, 200, JSON.stringify(byMax.body));
  assert.deepStrictEqual(byMax.body, {
    channel: 'temp',
    fn: ['max', 'count', 'avg'],
    orderBy: 'max:desc',
    rows: [
      { sessionId: a, key: 'lb/a', count: 3, values: { max: 9, count: 3, avg: 5 } },
      { sessionId: b, key: 'lb/b', count: 3, values: { max: 8, count: 2, avg: 7.5 } },
      { sessionId: c, key: 'lb/c', count: 1, values: { max: null, count: 0, avg: null } },
    ],
  });
  const ranged = await board('keyPrefix=lb/&channel=temp&fn=last&orderBy=last:asc&fromT=2&toT=30&limit=2');
  assert.deepStrictEqual(
    ranged.body.rows.map((row: { key: string; count: number; values: unknown }) => [row.key, row.count, row.values]),
    [
      ['lb/b', 2, { last: 8 }],
      ['lb/a', 1, { last: 9 }],
    ],
  );
  const narrowed = await board('keyPrefix=lb/&channel=temp', tenant);
  assert.deepStrictEqual(
    narrowed.body.rows.map((row: { key: string }) => row.key),
    ['lb/b'],
  );
  assert.deepStrictEqual((await board('keyPrefix=other/&channel=temp', tenant)).body.rows, []);

  assertProblem(await call(`${running.baseUrl}/api/v1/aggregate?keyPrefix=lb/&channel=temp`), 401, 'missing_credential');
  assertProblem(await board('keyPrefix=lb/&channel=temp&orderBy=sum'), 400, 'invalid_request');
  assertProblem(await board('keyPrefix=lb/&channel=temp&limit=1001'), 400, 'invalid_request');
  assertProblem(await board('keyPrefix=lb/&channel=temp&limit=0'), 400, 'invalid_request');
  assertProblem(await board('channel=temp'), 400, 'invalid_request');
  assertProblem(await board('keyPrefix=lb/&channel=temp&fromT=NaN'), 400, 'invalid_request');
});

test('a leaderboard over 1,000 sessions is answered, over 1,001 refused with aggregate_too_large', async (t) => {
  const running = await startApp(t, { RATE_LIMIT_PER_MINUTE: '0' });
  const { key: reader } = await createKey(running.databaseUrl, { name: 'reader', role: 'reader' });
  // Made in the database: 1,001 creates through the API would only slow the test down.
  const addSessions = async (from: number, to: number) => {
    const db = new pg.Client({ connectionString: running.databaseUrl });
    await db.connect();
    try {
      await db.query(
        `INSERT INTO sessions (id, token_hash, key, channels)
         SELECT gen_random_uuid(), '\\x00', 'many/' || lpad(n::text, 4, '0'), ARRAY['temp'] FROM generate_series($1::int, $2::int) AS n`,
        [from, to],
      );
    } finally {
      await db.end();
    }
  };
  const board = () => call(`${running.baseUrl}/api/v1/aggregate?keyPrefix=many/&channel=temp&fn=count`, 'GET', bearer(reader));

  await addSessions(1, 1_000);
  const full = await board();
  assert.equal(full.status, 200, JSON.stringify(full.body));
  assert.equal(full.body.rows.length, 100, 'the default limit of rows');
  await addSessions(1_001, 1_001);
  assertProblem(await board(), 400, 'aggregate_too_large');
});

test('in private mode a session aggregate needs a key that reaches the session, as /data does', async (t) => {
  const running = await startApp(t, { RATE_LIMIT_PER_MINUTE: '0', ...privateMode() });
  const { key: admin } = await createKey(running.databaseUrl, { name: 'admin', role: 'admin' });
  const { key: outside } = await createKey(running.databaseUrl, { name: 'outside', role: 'reader', keyPrefix: 'zz/' });
  const id = await stream(
    running.baseUrl,
    admin,
    'p/one',
    ['v'],
    [
      [1, 2],
      [5, 4],
    ],
  );
  const url = `${running.baseUrl}/api/v1/sessions/${id}/aggregate?bucketMs=10&fn=sum`;
  assertProblem(await call(url), 401, 'missing_credential');
  assertProblem(await call(url, 'GET', bearer(outside)), 403, 'outside_key_prefix');
  const read = await call(url, 'GET', bearer(admin));
  assert.deepStrictEqual(read.body, { sessionId: id, bucketMs: 10, buckets: [{ t: 0, count: 2, v: { sum: 6 } }] });
});
