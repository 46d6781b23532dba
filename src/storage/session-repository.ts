/** Session records in PostgreSQL. Counters (sample_count, last_seq, first_t, last_t) move only with commits. */
import type pg from 'pg';
import { uuidPattern } from '../contract/schemas.ts';
import { within } from '../deadlines.ts';
import { CoalescingQueue } from './coalescing-queue.ts';
import { DatabaseUnreachableError, isDatabaseUnavailable } from './database.ts';
import { type NewSession, SessionCreates } from './session-creates.ts';
import { type ListPosition, listSessionPage, type SessionFilter, type SessionPage } from './session-list-query.ts';
import { type SessionRecord, type SessionRow, sessionColumns, toRecord } from './session-record.ts';

export { CreateCancelledError, KeyTakenError, type NewSession } from './session-creates.ts';
export type { SessionRecord } from './session-record.ts';

/**
 * Session ids are UUIDs; anything else is no session, and is never sent to PostgreSQL, whose
 * uuid cast would refuse it (and every lookup batched beside it).
 */
export function isSessionId(value: string): boolean {
  return uuidPattern.test(value);
}

// A deleted session is no session to every lookup: reads, claims and ends alike (migration 013).
const findSessions = {
  name: 'wavehouse-find-sessions',
  text: `SELECT ${sessionColumns} FROM sessions WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL`,
};
/** The most sessions one SELECT looks up. */
const maxFindBatch = 256;
/**
 * How long the lookups of one SELECT wait for its answer. The lookups behind it wait for it
 * too, so a query stuck on a link that died without a word (TCP keepalive finds that out only
 * after hours) must not hold them all: they fail as the database being out of reach (503).
 */
const defaultLookupTimeoutMs = 10_000;

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
  private readonly findQueue = new CoalescingQueue<PendingFind>({ maxBatch: maxFindBatch, handle: (batch) => this.findBatch(batch) });
  private readonly pool: pg.Pool;
  private readonly creates: SessionCreates;
  private readonly lookupTimeoutMs: number;

  constructor({ pool, creates, lookupTimeoutMs = defaultLookupTimeoutMs }: SessionRepositoryOptions) {
    this.pool = pool;
    this.creates = new SessionCreates(creates);
    this.lookupTimeoutMs = lookupTimeoutMs;
  }

  /**
   * Inserts a session; creates that arrive together go in one INSERT (session-creates.ts). A
   * key held already is a KeyTakenError, a statement_timeout a CreateCancelledError.
   */
  create(session: NewSession): Promise<SessionRecord> {
    return this.creates.create(session);
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

  /** A page of sessions, newest first (GET /sessions). */
  list(filter: SessionFilter, limit: number, after: ListPosition | null): Promise<SessionPage> {
    return listSessionPage(this.pool, filter, limit, after);
  }

  /**
   * Takes the session for a producer on this process: bumps its fencing epoch and returns the
   * record with the epoch this process's commits must carry (see migration 002).
   */
  async claimForProducer(id: string): Promise<{ record: SessionRecord; epoch: number } | null> {
    const { rows } = await this.pool.query<SessionRow & { producer_epoch: string }>(
      `UPDATE sessions SET producer_epoch = producer_epoch + 1
        WHERE id = $1 AND deleted_at IS NULL RETURNING ${sessionColumns}, producer_epoch`,
      [id],
    );
    return rows.length === 0 ? null : { record: toRecord(rows[0]), epoch: Number(rows[0].producer_epoch) };
  }

  /** Marks the session ended; a session already ended keeps its first endedAt. */
  async markEnded(id: string): Promise<SessionRecord | null> {
    const { rows } = await this.pool.query<SessionRow>(
      `UPDATE sessions SET status = 'ended', ended_at = COALESCE(ended_at, now())
       WHERE id = $1 AND deleted_at IS NULL RETURNING ${sessionColumns}`,
      [id],
    );
    return rows.length === 0 ? null : toRecord(rows[0]);
  }
}
