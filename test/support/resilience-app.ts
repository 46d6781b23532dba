/**
 * Variants of startApp (app.ts) for the crash, outage and shutdown tests: the app on a
 * database the test already has, and the app reaching a fresh database through a TCP proxy
 * the test can cut.
 */
import type { TestContext } from 'node:test';
import pg from 'pg';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import type { RunningApp } from './app.ts';
import { freshDatabase } from './database.ts';
import { startTcpProxy, type TcpProxy, type TcpProxyOptions } from './tcp-proxy.ts';

type Hooks = Pick<TestContext, 'after'>;

/** The real app on port 0 against `databaseUrl`, closed after the test; the database is left to its owner. */
export async function startAppOn(t: Hooks, databaseUrl: string, env: Record<string, string> = {}): Promise<RunningApp> {
  const config = loadConfig({ LOG_LEVEL: 'silent', HOST: '127.0.0.1', PORT: '0', DATABASE_URL: databaseUrl, ...env });
  const app = await buildApp(config);
  const baseUrl = await app.listen();
  t.after(() => app.close());
  return { app, baseUrl, wsUrl: baseUrl.replace(/^http/, 'ws'), databaseUrl };
}

export interface ProxiedApp extends RunningApp {
  proxy: TcpProxy;
  /** The same database, not through the proxy: what the test itself uses to look, even during a cut. */
  directDatabaseUrl: string;
}

/** The real app on a fresh database that it reaches only through a proxy the test controls. */
export async function startAppBehindProxy(
  t: Hooks,
  env: Record<string, string> = {},
  proxyOptions: TcpProxyOptions = {},
): Promise<ProxiedApp> {
  const database = await freshDatabase();
  const proxy = await startTcpProxy(undefined, proxyOptions);
  // After hooks run in the order they were added: a test that fails during a cut must give
  // the app its database back first, or closing it waits out the whole shutdown grace.
  t.after(() => proxy.restore());
  let running: RunningApp;
  try {
    running = await startAppOn(t, proxy.urlFor(database.url), env);
  } catch (error) {
    await proxy.close();
    await database.drop();
    throw error;
  }
  // Added after startAppOn's hook, so it runs once the app has let go of the database.
  t.after(async () => {
    await proxy.close();
    await database.drop();
  });
  return { ...running, proxy, directDatabaseUrl: database.url };
}

export interface StoredTotals {
  /** Sum of sample_count over the session's chunk rows. */
  chunkSamples: number;
  /** sessions.sample_count */
  sessionSampleCount: number;
  /** sessions.last_seq */
  lastSeq: number | null;
  /** Chunks that start at or below the end of the chunk before them: a sample stored twice. */
  overlappingChunks: number;
}

/** What the database itself says about a session, read on a connection of the test's own. */
export async function storedTotals(databaseUrl: string, sessionId: string): Promise<StoredTotals> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ chunk_samples: string; sample_count: string; last_seq: string | null; overlapping: string }>(
      `SELECT (SELECT coalesce(sum(sample_count), 0) FROM sample_chunks WHERE session_id = $1) AS chunk_samples,
              s.sample_count, s.last_seq,
              (SELECT count(*) FROM (
                 SELECT first_seq, lag(last_seq) OVER (ORDER BY first_seq) AS previous_last
                   FROM sample_chunks WHERE session_id = $1) c
                WHERE c.first_seq <= c.previous_last) AS overlapping
         FROM sessions s WHERE s.id = $1`,
      [sessionId],
    );
    if (rows.length === 0) throw new Error(`no session ${sessionId}`);
    const row = rows[0];
    return {
      chunkSamples: Number(row.chunk_samples),
      sessionSampleCount: Number(row.sample_count),
      lastSeq: row.last_seq === null ? null : Number(row.last_seq),
      overlappingChunks: Number(row.overlapping),
    };
  } finally {
    await client.end();
  }
}

/** 1, 2, ..., n */
export function seqsUpTo(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i + 1);
}
