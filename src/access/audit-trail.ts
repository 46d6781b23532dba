/**
 * The audit trail: who did what to which session, key, token family or connector, and which
 * credentials were refused. Never a secret: actors and targets are ids.
 *
 * Off the request path: `record` puts a row in a bounded queue, written in batches every
 * second, so a request never waits for the audit log, and a database outage costs at most
 * the queue's bound of memory. Rows that find the queue full are counted, and the count is
 * written as one `audit.drop` row once there is room, so a gap in the log is itself logged.
 *
 * Refused credentials are aggregated, not written one by one: a brute force must not fill the
 * disk. A refusal adds to a count per client address, reason and key (for a known key that is
 * expired or revoked) in a bounded map, which becomes rows once a minute, one per entry, with
 * the count. When the map is full, further new entries are only counted, in one `overflow`
 * row. So a million wrong keys from one address make one row, and from a million addresses
 * at most the map's bound of rows a minute.
 */
import type { Logger } from 'pino';
import type { AuditEntry, AuditQuery, AuditRow } from '../storage/audit-repository.ts';
import type { RefusalCode } from './policy.ts';

export const auditActions = [
  'session.create',
  'session.end',
  'session.delete',
  'session.restore',
  'session.purge',
  'key.create',
  'key.revoke',
  'token_family.revoke',
  'connector.create',
  'connector.update',
  'connector.delete',
  'credential.refuse',
  'audit.drop',
] as const;

export type AuditAction = (typeof auditActions)[number];

/** Who acted, from where, in which request. */
export interface AuditContext {
  /** `key:<id>`, `oidc:<sub>`, `ingest:<sessionId>`, `cli`, `anonymous` (Principal.actor). */
  readonly actor: string;
  readonly ip: string | null;
  readonly requestId: string | null;
}

export interface AuditEvent {
  readonly action: AuditAction;
  readonly target: string | null;
  /** `success`, or why not. */
  readonly outcome: string;
}

/** A credential refused: from where, why, and the key it names when the key is known. */
export interface Refusal {
  readonly ip: string | null;
  readonly code: RefusalCode;
  readonly keyId?: string | null;
}

export interface AuditStore {
  append(rows: readonly AuditRow[]): Promise<void>;
  list(query: AuditQuery): Promise<AuditEntry[]>;
}

export interface AuditTrailOptions {
  readonly store: AuditStore;
  /** The most rows waiting to be written. Default 10,000. */
  readonly maxQueued?: number;
  /** The most rows one INSERT carries. Default 1,000. */
  readonly maxBatch?: number;
  /** How often queued rows are written. Default 1 s. */
  readonly flushIntervalMs?: number;
  /** How long refusals are counted before they become rows. Default 60 s. */
  readonly refusalWindowMs?: number;
  /** The most distinct (address, reason, key) counted in one window. Default 10,000. */
  readonly maxRefusalBuckets?: number;
  readonly clock?: () => number;
  readonly log?: Logger;
}

export type AuditPage =
  | { readonly ok: true; readonly entries: Omit<AuditEntry, 'id'>[]; readonly nextCursor: string | null }
  | { readonly ok: false; readonly problem: string };

export interface AuditListQuery {
  readonly cursor?: string;
  readonly limit?: number;
  readonly actor?: string;
  readonly action?: string;
}

interface RefusalBucket {
  readonly firstAtMs: number;
  readonly ip: string | null;
  readonly code: RefusalCode;
  readonly keyId: string | null;
  count: number;
}

const maxListLimit = 1000;
const defaultListLimit = 100;

/** Cursors are opaque to clients: the id of the last row they saw, wrapped so it is not taken for a number to do sums with. */
export function encodeCursor(id: string): string {
  return Buffer.from(`audit:${id}`).toString('base64url');
}

export function decodeCursor(cursor: string): string | null {
  if (cursor.length > 64 || !/^[A-Za-z0-9_-]+$/.test(cursor)) return null;
  const match = /^audit:([1-9][0-9]{0,18})$/.exec(Buffer.from(cursor, 'base64url').toString('latin1'));
  return match ? match[1] : null;
}

export class AuditTrail {
  readonly name = 'audit trail';
  private readonly store: AuditStore;
  private readonly maxQueued: number;
  private readonly maxBatch: number;
  private readonly flushIntervalMs: number;
  private readonly refusalWindowMs: number;
  private readonly maxRefusalBuckets: number;
  private readonly clock: () => number;
  private readonly log: Logger | undefined;
  private readonly queue: AuditRow[] = [];
  /** Events that found the queue full, not yet written as an `audit.drop` row. */
  private dropped = 0;
  private refusals = new Map<string, RefusalBucket>();
  private overflow = 0;
  private windowStartMs: number;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | null = null;

  constructor(options: AuditTrailOptions) {
    this.store = options.store;
    this.maxQueued = options.maxQueued ?? 10_000;
    this.maxBatch = options.maxBatch ?? 1_000;
    this.flushIntervalMs = options.flushIntervalMs ?? 1_000;
    this.refusalWindowMs = options.refusalWindowMs ?? 60_000;
    this.maxRefusalBuckets = options.maxRefusalBuckets ?? 10_000;
    this.clock = options.clock ?? Date.now;
    this.log = options.log;
    this.windowStartMs = this.clock();
  }

  /** Queues one row for `event`, done by `context.actor`; never waits. */
  record(context: AuditContext, event: AuditEvent): void {
    this.enqueue({ at: new Date(this.clock()), ...context, ...event, count: 1 });
  }

  /** Counts a refused credential; never waits, and takes no more memory once the map is full. */
  refused(refusal: Refusal): void {
    const keyId = refusal.keyId ?? null;
    const bucketKey = `${refusal.code}\n${refusal.ip ?? ''}\n${keyId ?? ''}`;
    const bucket = this.refusals.get(bucketKey);
    if (bucket !== undefined) bucket.count += 1;
    else if (this.refusals.size < this.maxRefusalBuckets)
      this.refusals.set(bucketKey, { firstAtMs: this.clock(), ip: refusal.ip, code: refusal.code, keyId, count: 1 });
    else this.overflow += 1;
  }

  /** Distinct refusals counted in this window (bounded by maxRefusalBuckets). */
  get refusalBuckets(): number {
    return this.refusals.size;
  }

  get queued(): number {
    return this.queue.length;
  }

  async start(): Promise<void> {
    this.timer = setInterval(() => {
      if (this.clock() - this.windowStartMs >= this.refusalWindowMs) this.closeWindow();
      void this.flush();
    }, this.flushIntervalMs);
    this.timer.unref();
  }

  /** Turns the refusals counted so far into rows, and starts a new window. */
  closeWindow(): void {
    const refusals = this.refusals;
    const overflow = this.overflow;
    const windowStart = new Date(this.windowStartMs);
    this.refusals = new Map();
    this.overflow = 0;
    this.windowStartMs = this.clock();
    for (const bucket of refusals.values()) {
      this.enqueue({
        at: new Date(bucket.firstAtMs),
        actor: 'anonymous',
        action: 'credential.refuse',
        target: bucket.keyId,
        ip: bucket.ip,
        requestId: null,
        outcome: bucket.code,
        count: bucket.count,
      });
    }
    if (overflow > 0) {
      this.enqueue({
        at: windowStart,
        actor: 'anonymous',
        action: 'credential.refuse',
        target: null,
        ip: null,
        requestId: null,
        outcome: 'overflow',
        count: overflow,
      });
    }
  }

  private enqueue(row: AuditRow): void {
    if (this.queue.length < this.maxQueued) this.queue.push(row);
    else this.dropped += row.count;
  }

  /** Writes the queued rows, a batch at a time; one flush at a time. A failed write keeps its rows for the next. */
  flush(): Promise<void> {
    this.flushing ??= this.write().finally(() => {
      this.flushing = null;
    });
    return this.flushing;
  }

  private async write(): Promise<void> {
    for (;;) {
      if (this.dropped > 0 && this.queue.length < this.maxQueued) {
        const at = new Date(this.clock());
        this.queue.push({
          at,
          actor: 'audit',
          action: 'audit.drop',
          target: null,
          ip: null,
          requestId: null,
          outcome: 'queue_full',
          count: this.dropped,
        });
        this.dropped = 0;
      }
      if (this.queue.length === 0) return;
      const batch = this.queue.slice(0, this.maxBatch);
      try {
        await this.store.append(batch);
      } catch (error) {
        this.log?.warn({ err: error, queued: this.queue.length }, 'writing the audit log failed; retrying with the next flush');
        return;
      }
      // Only a flush takes rows off the front, and one runs at a time: the batch is still there.
      this.queue.splice(0, batch.length);
    }
  }

  /** Writes what is counted and queued, until done or the deadline passes. */
  async close(deadline: number): Promise<void> {
    clearInterval(this.timer);
    this.closeWindow();
    await this.flushing;
    while ((this.queue.length > 0 || this.dropped > 0) && Date.now() < deadline) {
      const before = this.queue.length;
      await this.flush();
      if (this.queue.length >= before) return;
    }
  }

  /** A page of the log, newest first: GET /audit. */
  async list(query: AuditListQuery): Promise<AuditPage> {
    const limit = query.limit ?? defaultListLimit;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > maxListLimit)
      return { ok: false, problem: `limit must be an integer from 1 to ${maxListLimit}` };
    const beforeId = query.cursor === undefined ? null : decodeCursor(query.cursor);
    if (beforeId === null && query.cursor !== undefined) return { ok: false, problem: 'cursor is not one this server gave' };
    // One row more than asked tells whether there is a next page, so the last page says so.
    const rows = await this.store.list({ beforeId, limit: limit + 1, actor: query.actor, action: query.action });
    const page = rows.slice(0, limit);
    const nextCursor = rows.length > limit ? encodeCursor(page[page.length - 1].id) : null;
    return { ok: true, entries: page.map(({ id: _id, ...entry }) => entry), nextCursor };
  }
}
