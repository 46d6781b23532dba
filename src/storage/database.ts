/**
 * The connection pool. `pg` rather than postgres.js: it sets TCP_NODELAY itself, without which
 * each COPY stalls about 70 ms, and with pg-copy-streams its binary COPY is within a fifth of
 * the fastest measured ("The machine's limits" in docs/performance.md).
 */
import pg from 'pg';
import { parseIntoClientConfig } from 'pg-connection-string';
import copyStreams from 'pg-copy-streams';
import type { Logger } from 'pino';

export type Pool = pg.Pool;

export interface PoolOptions {
  /** Names the pool's connections in pg_stat_activity (the writer's are `wavehouse-writer`). */
  applicationName?: string;
  /** Each connection's statement_timeout: PostgreSQL cancels a statement that runs longer (SQLSTATE 57014). */
  statementTimeoutMs?: number;
  /**
   * Each connection's backend_flush_after: past this many kB written by the connection's
   * backend, PostgreSQL asks the kernel to start writing them to disk. For a connection that
   * writes in bulk (see commit-thread-body.ts).
   */
  backendFlushAfterKb?: number;
}

/**
 * How long a peer that vanished without a word (a crashed host, a dropped NAT entry, a cut
 * link) may keep a connection, and with it, for the lock connection, its producers' advisory
 * locks: the OS defaults wait about 2 h before TCP gives up. Both ends are bounded.
 *
 * The server's end, sent as startup options to every backend (all are settable by any user,
 * no server configuration needed; postgresql.conf can set the same, see docs/deployment.md):
 * after `idleS` without a packet from the client it probes every `intervalS`, and closes the
 * connection after `count` unanswered probes, ending the backend and freeing its locks
 * 10 + 3 x 5 = 25 s after the client last spoke. Keepalive does not probe while data is
 * unacknowledged, which `tcpUserTimeoutMs` bounds the same. A backend busy in a query reads
 * nothing from the client, so it checks every `clientCheckIntervalMs` that the client is still
 * there (PostgreSQL 14 or later).
 *
 * The client's end: Node probes after `clientIdleMs`, then every second, 10 times (its fixed
 * interval and count on Linux), so a query on a dead link fails about 20 s later.
 */
export const keepalive = {
  idleS: 10,
  intervalS: 5,
  count: 3,
  tcpUserTimeoutMs: 25_000,
  clientCheckIntervalMs: 10_000,
  clientIdleMs: 10_000,
} as const;

const keepaliveOptions = [
  `-c tcp_keepalives_idle=${keepalive.idleS}s`,
  `-c tcp_keepalives_interval=${keepalive.intervalS}s`,
  `-c tcp_keepalives_count=${keepalive.count}`,
  `-c tcp_user_timeout=${keepalive.tcpUserTimeoutMs}ms`,
  `-c client_connection_check_interval=${keepalive.clientCheckIntervalMs}ms`,
].join(' ');

/**
 * A connection's settings. The URL's own parameters (`?sslmode=...`, `?options=...`) are kept,
 * but the settings given here win over them: pg would let the URL win, and a DATABASE_URL that
 * happened to set application_name, statement_timeout or options would then silently rename
 * the writer's connections, unbound creates or drop the writeback setting. `options` are
 * joined, the URL's (or PGOPTIONS) first: PostgreSQL applies them in order, so the keepalive
 * settings and the writer's win over the same ones there.
 */
export function connectionConfig(url: string, options: PoolOptions = {}): pg.ClientConfig {
  const { applicationName = 'wavehouse', statementTimeoutMs, backendFlushAfterKb } = options;
  const fromUrl = parseIntoClientConfig(url);
  const startupOptions = [
    fromUrl.options ?? process.env.PGOPTIONS,
    keepaliveOptions,
    backendFlushAfterKb === undefined ? undefined : `-c backend_flush_after=${backendFlushAfterKb}kB`,
  ]
    .filter((option) => option)
    .join(' ');
  return {
    ...fromUrl,
    ...(statementTimeoutMs === undefined ? {} : { statement_timeout: statementTimeoutMs }),
    ...(startupOptions === '' ? {} : { options: startupOptions }),
    connectionTimeoutMillis: 5_000,
    application_name: applicationName,
    // A link that dies without a word is found by TCP keepalive instead of leaving a query,
    // and the creates and commits behind it, waiting (see `keepalive`).
    keepAlive: true,
    keepAliveInitialDelayMillis: keepalive.clientIdleMs,
  };
}

export function createPool(url: string, size: number, log: Logger, options: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({ ...connectionConfig(url, options), max: size, idleTimeoutMillis: 30_000 });
  // An idle client whose server went away emits here; without a listener it would crash
  // the process. The pool drops the client and the next query connects anew. pg-pool hangs
  // the whole client on the error (err.client), which logged as is was kilobytes of
  // connection state a line: it is taken off first (the pool has done with it).
  pool.on('error', (error) => {
    delete (error as { client?: unknown }).client;
    log.warn({ err: error }, 'idle database connection lost');
  });
  return pool;
}

/**
 * A connection to the database that could not be opened (refused, unreachable, or not open
 * within the pool's connect timeout): nothing was sent, so nothing was stored.
 */
export class DatabaseUnreachableError extends Error {
  constructor(cause: unknown) {
    super(`cannot connect to the database: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'DatabaseUnreachableError';
  }
}

/**
 * Codes that say the database cannot serve now, whatever was asked: Node's for a link refused
 * or lost; SQLSTATE connection exceptions (08000-08007, not 08P01, a protocol violation: a bug
 * or a pooler's refusal), too many connections (53300), a read-only server (25006, a standby
 * after a failover), and a server shutting down, crashed or starting (57P01-57P03).
 */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
  '08007',
  '53300',
  '25006',
  '57P01',
  '57P02',
  '57P03',
]);
/**
 * pg's and pg-pool's words for the same, which carry no code: a connection lost, one not opened
 * in time, and no connection of the pool free in time (the database is too slow to give any
 * back). Exact, so that "Connection terminated" of a client this process ended is not one.
 */
const unavailableMessages = new Set([
  'Connection terminated unexpectedly',
  'Connection terminated due to connection timeout',
  'timeout exceeded when trying to connect',
]);

/**
 * Whether `error` says the database could not be used at all, rather than that it refused what
 * was asked. A request that meets one may well succeed a little later, so it is answered 503
 * with Retry-After, not 500.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof DatabaseUnreachableError) return true;
  if (!(error instanceof Error)) return false;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? unavailableCodes.has(code) : unavailableMessages.has(error.message);
}

export interface CheckOutOptions {
  /**
   * Failures after which the client is still as good as new, so it goes back to the pool
   * rather than being destroyed: a statement the server refused cleanly, say. None by default.
   */
  reusableAfter?: (error: unknown) => boolean;
  /** What a failure to check a client out becomes; by default, pg's own error. */
  connectError?: (error: unknown) => Error;
}

/**
 * Runs `work` on a client checked out of `pool`, and gives it back. A client whose work failed
 * may be in any state (mid-COPY, mid-transaction, its connection lost), so it is released as
 * broken, and the pool destroys it instead of handing it to the next caller, unless
 * `reusableAfter` says otherwise. The pool hears 'error' only on idle clients: a connection
 * lost while this one is checked out would emit it unheard and crash the process, so it is
 * heard here (the failure itself reaches the awaited query in `work`). A broken client keeps
 * that listener, as it may still emit while it is torn down.
 */
export async function withPooledClient<T>(
  pool: pg.Pool,
  work: (client: pg.PoolClient) => Promise<T>,
  options: CheckOutOptions = {},
): Promise<T> {
  const { reusableAfter = () => false, connectError } = options;
  const client = await pool.connect().catch((error: unknown) => {
    throw connectError ? connectError(error) : error;
  });
  const ignoreError = () => undefined;
  client.on('error', ignoreError);
  let broken = false;
  try {
    return await work(client);
  } catch (error) {
    broken = !reusableAfter(error);
    throw error;
  } finally {
    if (!broken) client.off('error', ignoreError);
    client.release(broken);
  }
}

/** Runs `work` on a connection of its own, which is closed whatever the outcome. */
export async function withClient<T>(config: string | pg.ClientConfig, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client(config);
  // A connection that drops fails the awaited calls; unheard, its 'error' event would crash the process.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await work(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export async function isDatabaseReachable(pool: pg.Pool): Promise<boolean> {
  try {
    await pool.query('SELECT 1');
    return true;
  } catch {
    return false;
  }
}

/**
 * The whole output of a `COPY ... TO STDOUT`, for reads whose size the caller bounds. Binary COPY
 * hands a bytea over as its bytes; a plain query would send it as hex text to be decoded again.
 */
export function copyOutOf(pool: pg.Pool, sql: string): Promise<Buffer> {
  return withPooledClient(pool, async (client) => {
    const pieces: Buffer[] = [];
    for await (const piece of client.query(copyStreams.to(sql))) pieces.push(piece as Buffer);
    return Buffer.concat(pieces);
  });
}
