/**
 * One producer per session across every process (DESIGN, ingest socket): a process holds a
 * PostgreSQL session-level advisory lock per session it takes a producer for, all on one
 * dedicated connection. Why advisory locks on one connection rather than a lease column:
 * when a process dies (even by SIGKILL) its connection closes and PostgreSQL frees its locks
 * at once, so a producer reconnecting after a crash is never refused for a lease to expire.
 *
 * A lock is released only after everything its producer sent is committed
 * (session-coordinator.ts), so a producer that moves to another process finds the stored
 * `lastSeq` complete and its resends are dropped as duplicates there, never stored twice.
 *
 * If the lock connection drops (a database outage), the locks are gone; whatever opens the
 * next connection (an acquire, or the restore queued by the drop) takes back the locks of the
 * producers still attached here before anything else is sent on it. A session whose lock was
 * taken meanwhile by another process is reported through `onLost`.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { connectionConfig } from './database.ts';

/** The advisory lock key of a session: the first 64 bits of its UUID. */
export function sessionLockKey(sessionId: string): string {
  return BigInt.asIntN(64, BigInt('0x' + sessionId.replace(/-/g, '').slice(0, 16))).toString();
}

/** One connection of the lock holder; `dead` once it dropped or was dropped: nothing more goes on it. */
interface LockConnection {
  readonly client: pg.Client;
  dead: boolean;
}

export class ProducerLocks {
  /**
   * The sessions whose locks this process holds: on `current` while it is alive, otherwise to
   * be taken back on the next connection. No connection becomes `current` before it has taken
   * back every one of them (or reported it lost), whoever opens it: a caller's acquire or the
   * restore that follows a drop.
   */
  private readonly held = new Set<string>();
  private current: LockConnection | null = null;
  private closed = false;
  /** Serializes lock traffic so acquire/release/re-take never interleave on the connection. */
  private tail: Promise<unknown> = Promise.resolve();
  private restoreTimer: NodeJS.Timeout | null = null;
  private restoreAttempts = 0;

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly onLost: (sessionId: string) => void,
  ) {}

  /** Not re-entrant: a lock this process already holds is reported as taken. */
  tryAcquire(sessionId: string): Promise<boolean> {
    return this.serialize(async () => {
      if (this.held.has(sessionId)) return false;
      const { client } = await this.connection();
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [sessionLockKey(sessionId)]);
      if (rows[0].locked) this.held.add(sessionId);
      return rows[0].locked;
    });
  }

  release(sessionId: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.held.delete(sessionId)) return;
      const connection = this.current;
      if (connection === null || connection.dead) return;
      await connection.client.query('SELECT pg_advisory_unlock($1::bigint)', [sessionLockKey(sessionId)]).catch((error: unknown) => {
        this.log.warn({ err: error, sessionId }, 'advisory unlock failed; the lock goes with its connection');
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.restoreTimer !== null) clearTimeout(this.restoreTimer);
    await this.tail.catch(() => undefined);
    this.held.clear();
    const connection = this.current;
    this.current = null;
    if (connection === null) return;
    connection.dead = true;
    await connection.client.end().catch(() => undefined);
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** The live connection, or a new one that has taken back every held lock. Only under `serialize`. */
  private async connection(): Promise<LockConnection> {
    if (this.closed) throw new Error('producer locks are closed');
    if (this.current !== null && !this.current.dead) return this.current;
    this.current = null;
    const connection = await this.open();
    try {
      await this.retake(connection);
    } catch (error) {
      connection.dead = true;
      void connection.client.end().catch(() => undefined);
      throw error;
    }
    this.current = connection;
    this.restoreAttempts = 0;
    return connection;
  }

  private async open(): Promise<LockConnection> {
    const client = new pg.Client(connectionConfig(this.url, { applicationName: 'wavehouse-locks' }));
    const connection: LockConnection = { client, dead: false };
    const lost = (error?: Error) => {
      if (connection.dead) return;
      connection.dead = true;
      if (this.current !== connection || this.closed) return;
      this.current = null;
      this.log.warn({ err: error }, 'producer lock connection lost; locks will be taken back on reconnect');
      this.scheduleRestore(0);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    return connection;
  }

  /**
   * Takes back, on a new connection, the locks of producers still attached here. One that
   * another process took meanwhile is reported through `onLost`.
   */
  private async retake(connection: LockConnection): Promise<void> {
    if (this.held.size === 0) return;
    const sessionIds = [...this.held];
    const { rows } = await connection.client.query<{ locked: boolean }>(
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
   * processes) until the next acquire: a restore reconnects by itself, retrying until it
   * succeeds, someone else's acquire does it first, or nothing is held any more.
   */
  private scheduleRestore(delayMs: number): void {
    if (this.restoreTimer !== null || this.closed) return;
    this.restoreTimer = setTimeout(() => {
      this.restoreTimer = null;
      void this.serialize(async () => {
        if (this.closed || this.held.size === 0 || (this.current !== null && !this.current.dead)) return;
        try {
          await this.connection();
        } catch (error) {
          this.log.warn({ err: error }, 'producer lock connection not restored; retrying');
          this.scheduleRestore(Math.min(2_000, 100 * 2 ** this.restoreAttempts++));
        }
      });
    }, delayMs);
  }
}
