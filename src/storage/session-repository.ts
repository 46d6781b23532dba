/** Session records in PostgreSQL. Counters (sample_count, last_seq) move only with commits. */
import type pg from 'pg';
import { within } from '../deadlines.ts';
import { CoalescingQueue } from './coalescing-queue.ts';
import { DatabaseUnreachableError, isDatabaseUnavailable, withPooledClient } from './database.ts';
import { type SessionRecord, type SessionRow, sessionColumns, toRecord } from './session-record.ts';

export type { SessionRecord } from './session-record.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Session ids are UUIDs; anything else is no session, and is never sent to PostgreSQL, whose
 * uuid cast would refuse it (and every lookup batched beside it).
 */
export function isSessionId(value: string): boolean {
  return uuidPattern.test(value);
}

export interface NewSession {
  id: string;
  tokenHash: Buffer;
  channels: readonly string[];
  sampleRateHz: number | null;
  metadata: Record<string, unknown>;
}

// The REST hot path: named, so each pooled connection parses and plans them once
// and then only binds and executes. At 2,000 requests/s that took PostgreSQL's CPU per get
// from ~125 to ~75 us and per create from ~260 to ~200 us. The columns are listed, not *, so
// a migration that adds a column does not invalidate a statement other instances still hold.
// Creates use one statement for one session or many (a batch, see create()): the sessions as
// arrays, channels as one JSON array a row (a text[] a row cannot be a parameter of unnest).
const insertSessions = {
  name: 'wavehouse-insert-sessions',
  text: `INSERT INTO sessions (id, token_hash, channels, sample_rate_hz, metadata)
         SELECT a.id, a.token_hash,
                ARRAY(SELECT c.name FROM jsonb_array_elements_text(a.channels) WITH ORDINALITY AS c(name, n) ORDER BY c.n),
                a.sample_rate_hz, a.metadata
           FROM unnest($1::uuid[], $2::bytea[], $3::jsonb[], $4::float8[], $5::jsonb[])
                AS a(id, token_hash, channels, sample_rate_hz, metadata)
         RETURNING ${sessionColumns}`,
};
/** The most sessions one INSERT carries. */
const maxCreateBatch = 64;
const findSessions = { name: 'wavehouse-find-sessions', text: `SELECT ${sessionColumns} FROM sessions WHERE id = ANY($1::uuid[])` };
/** The most sessions one SELECT looks up. */
const maxFindBatch = 256;
/**
 * How long the lookups of one SELECT wait for its answer. The lookups behind it wait for it
 * too, so a query stuck on a link that died without a word (TCP keepalive finds that out only
 * after hours) must not hold them all: they fail as the database being out of reach (503).
 */
const defaultLookupTimeoutMs = 10_000;

/**
 * Whether PostgreSQL refused the data itself (SQLSTATE classes 22, data exception, and 23,
 * integrity constraint), not the connection or the server.
 */
function refusedData(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'));
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

interface PendingCreate {
  session: NewSession;
  resolve: (record: SessionRecord) => void;
  reject: (error: unknown) => void;
}

interface PendingFind {
  id: string;
  resolve: (record: SessionRecord | null) => void;
  reject: (error: unknown) => void;
}

export interface SessionRepositoryOptions {
  /** The pool lookups, claims and ends run on. */
  pool: pg.Pool;
  /**
   * The pool creates are inserted on, whose connections have a `statement_timeout`
   * (SESSION_CREATE_TIMEOUT_MS, set by app.ts), so that PostgreSQL itself cancels an INSERT
   * that runs over (pg's query_timeout would only stop waiting for it, leaving it running). A
   * connection of their own rather than SET LOCAL in a transaction: that is two more round
   * trips a batch, which cost a lone create 0.3 ms. One connection is enough, as one INSERT at
   * a time is in flight, the one-by-one retries after a refused batch included (below).
   */
  creates: pg.Pool;
  /** How long the lookups of one SELECT wait for its answer; 10 s by default. */
  lookupTimeoutMs?: number;
}

export class SessionRepository {
  private readonly createQueue = new CoalescingQueue<PendingCreate>({
    maxBatch: maxCreateBatch,
    handle: (batch) => this.insertBatch(batch),
  });
  private readonly findQueue = new CoalescingQueue<PendingFind>({ maxBatch: maxFindBatch, handle: (batch) => this.findBatch(batch) });
  private readonly pool: pg.Pool;
  private readonly creates: pg.Pool;
  private readonly lookupTimeoutMs: number;

  constructor({ pool, creates, lookupTimeoutMs = defaultLookupTimeoutMs }: SessionRepositoryOptions) {
    this.pool = pool;
    this.creates = creates;
    this.lookupTimeoutMs = lookupTimeoutMs;
  }

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
      const records = await this.insert(batch.map((pending) => pending.session));
      const byId = new Map(records.map((record) => [record.id, record]));
      for (const pending of batch) {
        const record = byId.get(pending.session.id.toLowerCase());
        if (record) pending.resolve(record);
        else pending.reject(new Error(`session ${pending.session.id} was not returned by its insert`));
      }
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
        const [record] = await this.insert([pending.session]);
        pending.resolve(record);
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

  private insert(sessions: readonly NewSession[]): Promise<SessionRecord[]> {
    return withPooledClient(
      this.creates,
      async (client) => {
        try {
          const { rows } = await client.query<SessionRow>({
            ...insertSessions,
            values: [
              sessions.map((session) => session.id),
              sessions.map((session) => session.tokenHash),
              sessions.map((session) => JSON.stringify(session.channels)),
              sessions.map((session) => session.sampleRateHz),
              sessions.map((session) => JSON.stringify(session.metadata)),
            ],
          });
          return rows.map(toRecord);
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

  /**
   * The session with this id, or null. Lookups made while one is in flight go together in the
   * next, as one SELECT (a get at 2,000 requests/s: p50 1.5 -> 0.7-1.2 ms, p99 5.5-6.8 -> 4.2-5.2
   * ms). An id that is not a UUID is no session, and is never sent: in a batch, PostgreSQL's
   * refusal of it would fail every lookup beside it. A database out of reach, or a SELECT with
   * no answer within the lookup timeout, fails every lookup waiting at once.
   */
  find(id: string): Promise<SessionRecord | null> {
    if (!isSessionId(id)) return Promise.resolve(null);
    return new Promise((resolve, reject) => this.findQueue.push({ id: id.toLowerCase(), resolve, reject }));
  }

  private async findBatch(batch: PendingFind[]): Promise<void> {
    const answer = this.pool.query<SessionRow>({ ...findSessions, values: [batch.map((pending) => pending.id)] });
    try {
      const { rows } = await within(answer, this.lookupTimeoutMs, () => {
        throw new DatabaseUnreachableError(new Error(`a session lookup had no answer within ${this.lookupTimeoutMs} ms`));
      });
      const byId = new Map(rows.map((row) => [row.id, row]));
      for (const pending of batch) {
        const row = byId.get(pending.id);
        pending.resolve(row === undefined ? null : toRecord(row));
      }
    } catch (error) {
      const everyone = isDatabaseUnavailable(error) ? [...batch, ...this.findQueue.takeAll()] : batch;
      for (const pending of everyone) pending.reject(error);
    }
  }

  /**
   * Takes the session for a producer on this process: bumps its fencing epoch and returns the
   * record with the epoch this process's commits must carry (see migration 002).
   */
  async claimForProducer(id: string): Promise<{ record: SessionRecord; epoch: number } | null> {
    const { rows } = await this.pool.query<SessionRow & { producer_epoch: string }>(
      `UPDATE sessions SET producer_epoch = producer_epoch + 1 WHERE id = $1 RETURNING ${sessionColumns}, producer_epoch`,
      [id],
    );
    return rows.length === 0 ? null : { record: toRecord(rows[0]), epoch: Number(rows[0].producer_epoch) };
  }

  /** Marks the session ended; a session already ended keeps its first endedAt. */
  async markEnded(id: string): Promise<SessionRecord | null> {
    const { rows } = await this.pool.query<SessionRow>(
      `UPDATE sessions SET status = 'ended', ended_at = COALESCE(ended_at, now())
       WHERE id = $1 RETURNING ${sessionColumns}`,
      [id],
    );
    return rows.length === 0 ? null : toRecord(rows[0]);
  }
}
