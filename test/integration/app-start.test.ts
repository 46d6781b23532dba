/**
 * A start that fails part way (src/app.ts): buildApp, or listen, rejects with the error of the
 * step that failed, and what the earlier steps opened is closed: no connection of the app's
 * pools is left on the database, and nothing keeps the test process alive (a Redis client
 * reconnecting or the commit thread would hold this file's run open).
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { type TestContext, test } from 'node:test';
import pg from 'pg';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { adminUrl, freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';

/** Connections to the database whose application_name is LIKE `applicationName` (every one of the app's by default). */
async function appConnections(databaseUrl: string, applicationName = 'wavehouse%'): Promise<number> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND application_name LIKE $2',
      [new URL(databaseUrl).pathname.slice(1), applicationName],
    );
    return rows[0].n;
  } finally {
    await admin.end();
  }
}

/** A port something else listens on, held until the test ends. */
async function takenPort(t: TestContext): Promise<number> {
  const holder = net.createServer();
  await new Promise<void>((resolve) => holder.listen(0, '127.0.0.1', resolve));
  t.after(() => holder.close());
  return (holder.address() as net.AddressInfo).port;
}

/** A port nothing listens on: one the system just handed out and got back. */
async function closedPort(): Promise<number> {
  const probe = net.createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as net.AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function setup(t: TestContext, env: Record<string, string>) {
  const database = await freshDatabase();
  t.after(() => database.drop());
  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: database.url, ...env });
  return { database, config };
}

test('a build that fails after migrating (Redis unreachable) rejects with that error and ends the pool', async (t) => {
  const { database, config } = await setup(t, { REDIS_URL: `redis://user:secret@127.0.0.1:${await closedPort()}` });
  await assert.rejects(buildApp(config), (error: Error) => {
    assert.match(String(error), /^Error: cannot connect to Redis at 127\.0\.0\.1:\d+ \(REDIS_URL\): .*ECONNREFUSED/);
    assert.doesNotMatch(String(error), /secret/, "the URL's credentials are not told");
    return true;
  });
  await eventually(async () => assert.equal(await appConnections(database.url), 0), { timeoutMs: 2_000 });
});

test('an app that cannot listen (the port is taken) rejects and closes its pool and its commit thread', async (t) => {
  const { database, config } = await setup(t, { PORT: String(await takenPort(t)) });
  const app = await buildApp(config);
  assert.ok((await appConnections(database.url)) >= 2, 'the pool and the commit thread hold connections once built');
  await assert.rejects(app.listen(), { code: 'EADDRINUSE' });
  await eventually(async () => assert.equal(await appConnections(database.url), 0), { timeoutMs: 2_000 });
  await app.close();
});

test('close() ends the creates pool, also of an app that never listened', async (t) => {
  const { database, config } = await setup(t, {});
  const app = await buildApp(config);
  // close() is idempotent: this one is for a test that fails before its own.
  t.after(() => app.close());
  const created = await app.server.inject({ method: 'POST', url: '/api/v1/sessions' });
  assert.equal(created.statusCode, 201, created.body);
  assert.equal(await appConnections(database.url, 'wavehouse-creates'), 1, 'the create opened the creates connection');
  await app.close();
  // Left open, the pool would keep its idle connection for 30 s (idleTimeoutMillis).
  await eventually(async () => assert.equal(await appConnections(database.url, 'wavehouse-creates'), 0), { timeoutMs: 2_000 });
});
