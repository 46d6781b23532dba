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
 * If the lock connection drops (a database outage), the locks are gone; the next call
 * reconnects and takes back the locks of the producers still attached here. A session whose
 * lock was taken meanwhile by another process is reported through `onLost`.
 */
import pg from 'pg';
import type { Logger } from 'pino';
import { connectionConfig } from './database.ts';

/** The advisory lock key of a session: the first 64 bits of its UUID. */
export function sessionLockKey(sessionId: string): string {
  return BigInt.asIntN(64, BigInt('0x' + sessionId.replace(/-/g, '').slice(0, 16))).toString();
}

export class ProducerLocks {
  private client: pg.Client | null = null;
  private connecting: Promise<pg.Client> | null = null;
  private readonly held = new Set<string>();
  private closed = false;
  /** Serializes lock traffic so acquire/release/re-take never interleave on the connection. */
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly url: string,
    private readonly log: Logger,
    private readonly onLost: (sessionId: string) => void,
  ) {}

  /** Not re-entrant: a lock this process already holds is reported as taken. */
  tryAcquire(sessionId: string): Promise<boolean> {
    return this.serialize(async () => {
      if (this.held.has(sessionId)) return false;
      const client = await this.connection();
      const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [sessionLockKey(sessionId)]);
      if (rows[0].locked) this.held.add(sessionId);
      return rows[0].locked;
    });
  }

  release(sessionId: string): Promise<void> {
    return this.serialize(async () => {
      if (!this.held.delete(sessionId)) return;
      if (this.client === null) return;
      await this.client.query('SELECT pg_advisory_unlock($1::bigint)', [sessionLockKey(sessionId)]).catch((error: unknown) => {
        this.log.warn({ err: error, sessionId }, 'advisory unlock failed; the lock goes with its connection');
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.tail.catch(() => undefined);
    this.held.clear();
    const client = this.client;
    this.client = null;
    await client?.end().catch(() => undefined);
  }

  private serialize<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work, work);
    this.tail = result.catch(() => undefined);
    return result;
  }

  private connection(): Promise<pg.Client> {
    if (this.client !== null) return Promise.resolve(this.client);
    this.connecting ??= this.connect().finally(() => {
      this.connecting = null;
    });
    return this.connecting;
  }

  private async connect(): Promise<pg.Client> {
    const client = new pg.Client(connectionConfig(this.url, { applicationName: 'wavehouse-locks' }));
    const lost = (error?: Error) => {
      if (this.client !== client) return;
      this.client = null;
      this.log.warn({ err: error }, 'producer lock connection lost; locks will be taken back on reconnect');
      void this.serialize(() => this.retake()).catch(() => undefined);
    };
    client.on('error', lost);
    client.on('end', () => lost());
    await client.connect();
    this.client = client;
    return client;
  }

  /** After a reconnect: take back the locks of producers still attached; retries until closed. */
  private async retake(): Promise<void> {
    for (let attempt = 0; !this.closed && this.held.size > 0 && this.client === null; attempt++) {
      try {
        const client = await this.connect();
        for (const sessionId of [...this.held]) {
          const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1::bigint) AS locked', [sessionLockKey(sessionId)]);
          if (!rows[0].locked) {
            this.held.delete(sessionId);
            this.onLost(sessionId);
          }
        }
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 100 * 2 ** attempt)));
      }
    }
  }
}
