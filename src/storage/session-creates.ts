/**
 * Inserting sessions, in batches: the create path of SessionRepository, apart from its
 * lookups, claims and ends.
 */
import type pg from 'pg';
import { CoalescingQueue } from './coalescing-queue.ts';
import { DatabaseUnreachableError, withPooledClient } from './database.ts';
import { type SessionRecord, type SessionRow, sessionColumns, toRecord } from './session-record.ts';

export interface NewSession {
  id: string;
  tokenHash: Buffer;
  /** A stream name; a session holding it already makes this create a KeyTakenError. */
  key?: string | null;
  /** Whether its values may be null; false when absent. */
  nullable?: boolean;
  channels: readonly string[];
  sampleRateHz: number | null;
  /** Days its chunks are kept after their commit; null or absent: RETENTION_DAYS alone. */
  retentionDays?: number | null;
  metadata: Record<string, unknown>;
}

// The REST hot path: named, so each pooled connection parses and plans them once
// and then only binds and executes. At 2,000 requests/s that took PostgreSQL's CPU per get
// from ~125 to ~75 us and per create from ~260 to ~200 us. The columns are listed, not *, so
// a migration that adds a column does not invalidate a statement other instances still hold.
// Creates use one statement for one session or many (a batch, see create()): the sessions as
// arrays, channels as one JSON array a row (a text[] a row cannot be a parameter of unnest).
// A key already held skips its row instead of failing the statement (and every create
// batched beside it): the row missing from RETURNING is the create that lost. Keys are unique
// among the sessions not deleted (migration 013): the conflict and the holder's lookup say so
// alike, so a deleted session's key is taken again, and its holder is never the deleted one.
const insertSessions = {
  name: 'wavehouse-insert-sessions',
  text: `INSERT INTO sessions (id, token_hash, key, nullable, channels, sample_rate_hz, metadata, retention_days)
         SELECT a.id, a.token_hash, a.key, a.nullable,
                ARRAY(SELECT c.name FROM jsonb_array_elements_text(a.channels) WITH ORDINALITY AS c(name, n) ORDER BY c.n),
                a.sample_rate_hz, a.metadata, a.retention_days
           FROM unnest($1::uuid[], $2::bytea[], $3::text[], $4::boolean[], $5::jsonb[], $6::float8[], $7::jsonb[], $8::integer[])
                AS a(id, token_hash, key, nullable, channels, sample_rate_hz, metadata, retention_days)
         ON CONFLICT (key) WHERE key IS NOT NULL AND deleted_at IS NULL DO NOTHING
         RETURNING ${sessionColumns}`,
};
const findHolders = {
  name: 'wavehouse-find-key-holders',
  text: 'SELECT id, key FROM sessions WHERE key = ANY($1::text[]) AND deleted_at IS NULL',
};
/** The most sessions one INSERT carries. */
const maxCreateBatch = 64;
/**
 * Whether PostgreSQL refused the data itself (SQLSTATE classes 22, data exception, and 23,
 * integrity constraint), not the connection or the server.
 */
function refusedData(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
}

/** A create whose key a session holds already: nothing was stored; `sessionId` is the holder, null if it is gone already. */
export class KeyTakenError extends Error {
  constructor(
    readonly key: string,
    readonly sessionId: string | null,
  ) {
    super(`the key ${key} is held by session ${sessionId ?? '(gone since)'}`);
    this.name = 'KeyTakenError';
  }
}

/**
 * A create PostgreSQL cancelled (SQLSTATE 57014, query_canceled), so nothing was stored: its
 * INSERT ran past the creates connection's statement_timeout (a lock held elsewhere, an
 * overloaded server), or an operator cancelled it (pg_cancel_backend). The code does not say
 * which, so neither does the message. A later try may succeed.
 */
export class CreateCancelledError extends Error {
  constructor(options?: ErrorOptions) {
    super("the database cancelled the session's insert", options);
    this.name = 'CreateCancelledError';
  }
}

/** A create's outcome: its record, or the key it lost and who holds it (null once the holder is gone). */
type CreateOutcome = SessionRecord | { lostKey: string | null; holder: string | null };

function settle(pending: PendingCreate, outcome: CreateOutcome): void {
  if (!('lostKey' in outcome)) {
    pending.resolve(outcome);
    return;
  }
  const { lostKey, holder } = outcome;
  pending.reject(
    lostKey === null ? new Error(`session ${pending.session.id} was not returned by its insert`) : new KeyTakenError(lostKey, holder),
  );
}

interface PendingCreate {
  session: NewSession;
  resolve: (record: SessionRecord) => void;
  reject: (error: unknown) => void;
}

export class SessionCreates {
  private readonly createQueue = new CoalescingQueue<PendingCreate>({
    maxBatch: maxCreateBatch,
    handle: (batch) => this.insertBatch(batch),
  });

  /** `creates`: the pool of SessionRepositoryOptions.creates. */
  constructor(private readonly creates: pg.Pool) {}

  /**
   * Inserts a session. Creates that arrive while an insert is running go together in the next,
   * as one INSERT of many rows: one statement, one commit and one fsync for all of them instead
   * of one each (REST create p99 at 2,000 requests/s, which come in bursts;
   * docs/performance.md). A create whose data the database refuses fails alone; a database that
   * cannot be reached, or cancels an insert (its statement_timeout ran out), fails every create
   * waiting at once, rather than each in turn after its own timeout.
   */
  create(session: NewSession): Promise<SessionRecord> {
    return new Promise((resolve, reject) => this.createQueue.push({ session, resolve, reject }));
  }

  private async insertBatch(batch: PendingCreate[]): Promise<void> {
    try {
      const outcomes = await this.insert(batch.map((pending) => pending.session));
      for (const [i, pending] of batch.entries()) settle(pending, outcomes[i]);
    } catch (error) {
      if (!refusedData(error)) {
        // The database is unreachable or failing: everything waiting would wait its turn for
        // the same error, so it all gets it now.
        this.rejectAll(batch, error);
      } else if (batch.length === 1) {
        batch[0].reject(error);
      } else {
        await this.insertOneByOne(batch);
      }
    }
  }

  /**
   * After a batch the database refused: one row it refuses must not fail the others, so each
   * goes again on its own and gets its own answer. One after another: side by side they would
   * queue for the creates pool's one connection, and those still queued after its connect
   * timeout (5 s) would fail without having been tried.
   */
  private async insertOneByOne(batch: PendingCreate[]): Promise<void> {
    for (const [i, pending] of batch.entries()) {
      try {
        const [outcome] = await this.insert([pending.session]);
        settle(pending, outcome);
      } catch (error) {
        if (refusedData(error)) {
          pending.reject(error);
        } else {
          // As for a batch: the rest would only wait their turn for the same error.
          this.rejectAll(batch.slice(i), error);
          return;
        }
      }
    }
  }

  /** Fails `batch` and every create queued behind it with `error`. */
  private rejectAll(batch: readonly PendingCreate[], error: unknown): void {
    for (const pending of [...batch, ...this.createQueue.takeAll()]) pending.reject(error);
  }

  /**
   * Inserts `sessions`; each one's outcome in their order. A session its insert skipped lost
   * its key to an earlier session or to one of the same batch, whose id is looked up on the
   * same connection (null if that session is gone by then).
   */
  private insert(sessions: readonly NewSession[]): Promise<CreateOutcome[]> {
    return withPooledClient(
      this.creates,
      async (client) => {
        try {
          const { rows } = await client.query<SessionRow>({
            ...insertSessions,
            values: [
              sessions.map((session) => session.id),
              sessions.map((session) => session.tokenHash),
              sessions.map((session) => session.key ?? null),
              sessions.map((session) => session.nullable === true),
              sessions.map((session) => JSON.stringify(session.channels)),
              sessions.map((session) => session.sampleRateHz),
              sessions.map((session) => JSON.stringify(session.metadata)),
              sessions.map((session) => session.retentionDays ?? null),
            ],
          });
          const stored = new Map(rows.map((row) => [row.id, toRecord(row)]));
          const lostKeys = sessions.filter((session) => !stored.has(session.id.toLowerCase())).map((session) => session.key);
          const holders = new Map<string | null | undefined, string>();
          if (lostKeys.length > 0) {
            const found = await client.query<{ id: string; key: string }>({ ...findHolders, values: [lostKeys] });
            for (const row of found.rows) holders.set(row.key, row.id);
          }
          return sessions.map(
            (session) => stored.get(session.id.toLowerCase()) ?? { lostKey: session.key ?? null, holder: holders.get(session.key) ?? null },
          );
        } catch (error) {
          // query_canceled: the statement_timeout ran out, or an operator cancelled it (see `creates`).
          if ((error as { code?: unknown } | null)?.code === '57014') throw new CreateCancelledError({ cause: error });
          throw error;
        }
      },
      {
        // A create that never reached the database says so: nothing was stored, which a lost
        // INSERT cannot say.
        connectError: (error) => new DatabaseUnreachableError(error),
        // Unlike other failures (cancelled, cut, a protocol error), data the database refused
        // leaves the connection as good as new, and on the creates' one connection a
        // reconnect would delay every create behind it.
        reusableAfter: refusedData,
      },
    );
  }
}
