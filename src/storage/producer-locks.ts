/**
 * One producer per session across every process (docs/protocol.md, ingest socket): a process
 * holds a PostgreSQL session-level advisory lock per session it takes a producer for, all on
 * one dedicated connection. Why advisory locks on one connection rather than a lease column:
 * when a process dies (even by SIGKILL) its connection closes and PostgreSQL frees its locks at
 * once, so a producer reconnecting after a crash is never refused for a lease to expire.
 *
 * A lock is released only after everything its producer sent is committed
 * (session-coordinator.ts), so a producer that moves to another process finds the stored
 * `lastSeq` complete and its resends are dropped as duplicates there, never stored twice.
 *
 * If the lock connection drops (a database outage), the locks are gone; whatever opens the
 * next connection (an acquire, or the restore queued by the drop) takes back the locks of the
 * producers still attached here before anything else is sent on it. A session whose lock was
 * taken meanwhile by another process is reported through `onLost`.
 *
 * A link can also go silent, with no FIN or RST (a dead host between, a dropped NAT entry):
 * the backend then lives on with the locks, and the client's queries wait, until keepalive
 * gives up. So every query here has a timeout and a heartbeat keeps one going; a connection
 * that does not answer is dropped, and the next one terminates its backend (freeing its
 * locks at once) before taking them back: within heartbeat interval + query timeout (10 s by
 * default) and a reconnect. Retaking rather than reporting them lost is right: the locks were
 * never let go by this process, and another one can only have got one if the old backend died
 * first, which the retake then reports.
 */
import { ExponentialBackoff, handleAll, retry } from 'cockatiel';
import pg from 'pg';
import type { Logger } from 'pino';
import { within } from '../deadlines.ts';
import { connectionConfig } from './database.ts';

/** The advisory lock key of a session: the first 64 bits of its UUID. */
export function sessionLockKey(sessionId: string): string {
  return BigInt.asIntN(64, BigInt(`0x${sessionId.replace(/-/g, '').slice(0, 16)}`)).toString();
}

/** One connection of the lock holder; `dead` once it dropped or was dropped: nothing more goes on it. */
interface LockConnection {
  readonly client: pg.Client;
  dead: boolean;
  /** Its backend, to terminate from the next connection: pid and start time, so a reused pid is never hit. */
  backend: { pid: number; start: string } | null;
}

export interface ProducerLocksOptions {
  /** The database; the locks are held on a connection of their own, not a pooled one. */
  url: string;
  log: Logger;
  /** Told of a session whose lock another process took while the lock connection was down. */
  onLost: (sessionId: string) => void;
  /** How often the lock connection is asked a trivial query when nothing else is sent on it. */
  heartbeatIntervalMs?: number;
  /** How long any query on the lock connection may take before the link counts as silent. */
  queryTimeoutMs?: number;
}

export class ProducerLocks {
  /** A Part (lifecycle.ts) with nothing to start: its connection opens on the first acquire. */
  readonly name = 'producer locks';
  /**
   * The sessions whose locks this process holds: on `current` while it is alive, otherwise to
   * be taken back on the next connection. No connection becomes `current` before it has taken
   * back every one of them (or reported it lost), whoever opens it: a caller's acquire or the
   * restore that follows a drop.
   */
  private readonly held = new Set<string>();
  private current: LockConnection | null = null;
  /**
   * Backends of dropped connections that may still be alive, holding locks: a link gone
   * silent (no FIN, no RST) leaves its backend waiting for keepalive, up to 25 s (database.ts).
   * The next connection terminates them before it takes locks back.
   */
  private orphans: Array<{ pid: number; start: string }> = [];
  private closed = false;
  /** Serializes lock traffic so acquire/release/re-take never interleave on the connection. */
  private tail: Promise<unknown> = Promise.resolve();
  /** Whether a restore is running (scheduleRestore): one at a time. */
  private restoring = false;
  /**
   * How a restore retries a connection it could not open: at once, then after a delay that
   * grows to at most 2 s, jittered, until it succeeds.
   */
  private readonly restorePolicy = retry(handleAll, {
    maxAttempts: Number.POSITIVE_INFINITY,
    backoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 2_000 }),
  }).dangerouslyUnref();
  private readonly heartbeat: NodeJS.Timeout;
  private beating = false;
  private readonly url: string;
  private readonly log: Logger;
  private readonly onLost: (sessionId: string) => void;
  private readonly queryTimeoutMs: number;

  constructor({ url, log, onLost, heartbeatIntervalMs = 5_000, queryTimeoutMs = 5_000 }: ProducerLocksOptions) {
    this.url = url;
    this.log = log;
    this.onLost = onLost;
    this.queryTimeoutMs = queryTimeoutMs;
    // A silent link is only noticed by sending on it: without traffic of its own, an idle lock
    // connection would look alive for as long as TCP keepalive takes.
    this.heartbeat = setInterval(() => this.beat(), heartbeatIntervalMs).unref();
  }

  /** Not re-entrant: a lock this process already holds is reported as taken. */
  tryAcquire(sessionId: string): Promise<boolean> {
    return this.serialize(async () => {
      if (this.held.has(sessionId)) return false;
      const connection = await this.connection();
      const { rows } = await this.query<{ locked: boolean }>(connection, 'SELECT pg_try_advisory_lock($1::bigint) AS locked', [
        sessionLockKey(sessionId),
      ]);
      if (rows[0].locked) this.held.add(sessionId);
      return rows[0].locked;
    });
  }

  release(sessionId: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.held.delete(sessionId)) return;
      const connection = this.current;
      if (connection === null || connection.dead) return;
      await this.query(connection, 'SELECT pg_advisory_unlock($1::bigint)', [sessionLockKey(sessionId)]).catch((error: unknown) => {
        this.log.warn({ err: error, sessionId }, 'advisory unlock failed; the lock goes with its connection');
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.heartbeat);
    await this.tail.catch(() => undefined);
    this.held.clear();
    const connection = this.current;
    this.current = null;
    if (connection === null) return;
    connection.dead = true;
    // A graceful end waits for the server's answer, which a silent link never sends.
    await within(
      connection.client.end().catch(() => undefined),
      this.queryTimeoutMs,
      () => undefined,
    );
    connection.client.connection.stream.destroy();
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /**
   * A query that fails if the link stays silent past `queryTimeoutMs`, and then drops the
   * connection: otherwise it would wait, and every lock call queued behind it, until TCP
   * keepalive gives up.
   */
  private query<R extends pg.QueryResultRow>(connection: LockConnection, text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return within(connection.client.query<R>(text, values), this.queryTimeoutMs, () => {
      const error = new Error(`no answer on the producer lock connection within ${this.queryTimeoutMs} ms`);
      this.dropped(connection, error);
      connection.client.connection.stream.destroy();
      throw error;
    });
  }

  private beat(): void {
    const connection = this.current;
    if (this.beating || this.closed || connection === null || connection.dead) return;
    this.beating = true;
    void this.serialize(async () => {
      if (this.current === connection && !connection.dead) await this.query(connection, 'SELECT 1');
    })
      .catch(() => undefined)
      .finally(() => {
        this.beating = false;
      });
  }

  /** The live connection, or a new one that has taken back every held lock. Only under `serialize`. */
  private async connection(): Promise<LockConnection> {
    if (this.closed) throw new Error('producer locks are closed');
    if (this.current !== null && !this.current.dead) return this.current;
    this.current = null;
    const connection = await this.open();
    try {
      const { rows } = await this.query<{ pid: number; start: string }>(
        connection,
        'SELECT pid, backend_start::text AS start FROM pg_stat_activity WHERE pid = pg_backend_pid()',
      );
      connection.backend = rows[0];
      await this.terminateOrphans(connection);
      await this.retake(connection);
    } catch (error) {
      this.dropped(connection);
      connection.client.connection.stream.destroy();
      throw error;
    }
    this.current = connection;
    return connection;
  }

  private async open(): Promise<LockConnection> {
    const client = new pg.Client(connectionConfig(this.url, { applicationName: 'wavehouse-locks' }));
    const connection: LockConnection = { client, dead: false, backend: null };
    client.on('error', (error) => this.dropped(connection, error));
    client.on('end', () => this.dropped(connection));
    await client.connect();
    return connection;
  }

  private dropped(connection: LockConnection, error?: Error): void {
    if (connection.dead) return;
    connection.dead = true;
    if (connection.backend !== null) this.orphans.push(connection.backend);
    if (this.current !== connection || this.closed) return;
    this.current = null;
    this.log.warn({ err: error }, 'producer lock connection lost; locks will be taken back on reconnect');
    this.restore();
  }

  /**
   * Ends the backends of dropped connections, and waits for them to go, so that their locks
   * are free before they are taken back (and are not left to keepalive when nothing is).
   */
  private async terminateOrphans(connection: LockConnection): Promise<void> {
    if (this.orphans.length === 0) return;
    const orphans = this.orphans;
    try {
      const { rows } = await this.query<{ pid: number; ended: boolean }>(
        connection,
        `SELECT pid, pg_terminate_backend(pid, $3) AS ended FROM pg_stat_activity
          WHERE (pid, backend_start::text) IN (SELECT * FROM unnest($1::int[], $2::text[]))`,
        [orphans.map((orphan) => orphan.pid), orphans.map((orphan) => orphan.start), Math.ceil(this.queryTimeoutMs / 2)],
      );
      if (rows.length > 0) this.log.warn({ backends: rows }, 'terminated the backends of dropped producer lock connections');
    } catch (error) {
      if (connection.dead) throw error;
      // Their locks are then reported lost on retake if still held: safe, if not kind.
      this.log.warn({ err: error }, 'could not terminate the backends of dropped producer lock connections');
    }
    this.orphans = this.orphans.filter((orphan) => !orphans.includes(orphan));
  }

  /**
   * Takes back, on a new connection, the locks of producers still attached here. One that
   * another process took meanwhile is reported through `onLost`.
   */
  private async retake(connection: LockConnection): Promise<void> {
    if (this.held.size === 0) return;
    const sessionIds = [...this.held];
    const { rows } = await this.query<{ locked: boolean }>(
      connection,
      'SELECT pg_try_advisory_lock(key) AS locked FROM unnest($1::bigint[]) WITH ORDINALITY AS k(key, n) ORDER BY n',
      [sessionIds.map(sessionLockKey)],
    );
    rows.forEach(({ locked }, i) => {
      if (locked) return;
      this.held.delete(sessionIds[i]);
      this.onLost(sessionIds[i]);
    });
  }

  /**
   * Without a caller needing the connection, held locks would stay untaken (and open to other
   * processes), and a silent connection's backend alive, until the next acquire: a restore
   * reconnects by itself, retrying until it succeeds, someone else's acquire does it first, or
   * there is nothing left to do.
   */
  private restore(): void {
    if (this.restoring || this.closed) return;
    this.restoring = true;
    void this.restorePolicy
      .execute(() => this.serialize(() => this.reconnect()))
      .finally(() => {
        this.restoring = false;
        // A connection it opened may have dropped again before it ended, and found it running.
        if (this.needsRestore()) this.restore();
      });
  }

  /** One try of a restore: done once there is nothing to do, whoever did it; throws to be retried. */
  private async reconnect(): Promise<void> {
    if (!this.needsRestore()) return;
    try {
      await this.connection();
    } catch (error) {
      this.log.warn({ err: error }, 'producer lock connection not restored; retrying');
      throw error;
    }
  }

  /** Locks to take back, or backends to end, with no live connection to do it on. */
  private needsRestore(): boolean {
    return !this.closed && (this.held.size > 0 || this.orphans.length > 0) && (this.current === null || this.current.dead);
  }
}
