/**
 * The connection pool. `pg` rather than postgres.js: with pg-copy-streams it is the fastest
 * COPY path measured here, and it sets TCP_NODELAY itself (../shared/perf/LIMITS.md).
 */
import pg from 'pg';
import type { Logger } from 'pino';

export type Pool = pg.Pool;

/**
 * `applicationName` names the pool's connections in pg_stat_activity (the writer's are
 * `wavehouse-writer`); `statementTimeoutMs`, if given, is each connection's statement_timeout:
 * PostgreSQL cancels a statement that runs longer (SQLSTATE 57014).
 */
export function createPool(url: string, size: number, log: Logger, applicationName = 'wavehouse', statementTimeoutMs?: number): pg.Pool {
  const pool = new pg.Pool({
    ...(statementTimeoutMs === undefined ? {} : { statement_timeout: statementTimeoutMs }),
    connectionString: url,
    max: size,
    connectionTimeoutMillis: 5_000,
    idleTimeoutMillis: 30_000,
    application_name: applicationName,
    // A link that dies without a word (a dropped NAT entry, a crashed host) is found by TCP
    // keepalive instead of leaving a query, and the creates and commits behind it, waiting.
    keepAlive: true,
  });
  // An idle client whose server went away emits here; without a listener it would crash
  // the process. The pool drops the client and the next query connects anew.
  pool.on('error', (error) => log.warn({ err: error }, 'idle database connection lost'));
  return pool;
}

export async function isDatabaseReachable(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}
