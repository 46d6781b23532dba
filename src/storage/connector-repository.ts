/**
 * Connector records in PostgreSQL (migrations 011, 016): what a client created, the streams each
 * feeds, the status the polling instance writes after each poll, so that any instance answers a
 * connector's status, and the credits spent of an upstream's budget. Secrets arrive sealed and leave sealed: this file never sees
 * them in clear.
 */
import type pg from 'pg';
import { withPooledClient } from './database.ts';

export interface ConnectorStreamRecord {
  key: string;
  sessionId: string;
  mapping: Array<{ channel: string; field: string; name: string }>;
}

export interface ConnectorStatus {
  lastPollAt: Date | null;
  lastSuccessAt: Date | null;
  lastError: string | null;
  failingSince: Date | null;
  breaker: 'closed' | 'open' | 'half-open';
  breakerOpenSince: Date | null;
  lastRecordAt: Date | null;
  nextPollAt: Date | null;
}

export interface ConnectorRecord extends ConnectorStatus {
  id: string;
  kind: string;
  name: string;
  config: Record<string, unknown>;
  /** The sealed secrets, null when it has none. */
  secrets: Buffer | null;
  secretNames: string[];
  pollIntervalS: number;
  paused: boolean;
  createdAt: Date;
  streams: ConnectorStreamRecord[];
  /** The credit ledger as stored (connectors/credit-budget.ts reads it), null before the first spend. */
  credits: unknown;
}

export type NewConnector = Pick<ConnectorRecord, 'id' | 'kind' | 'name' | 'config' | 'secrets' | 'secretNames' | 'pollIntervalS'>;

interface ConnectorRow {
  id: string;
  kind: string;
  name: string;
  config: Record<string, unknown>;
  secrets: Buffer | null;
  secret_names: string[];
  poll_interval_s: number;
  paused: boolean;
  created_at: Date;
  streams: ConnectorStreamRecord[];
  credits: unknown;
  last_poll_at: Date | null;
  last_success_at: Date | null;
  last_error: string | null;
  failing_since: Date | null;
  breaker: ConnectorStatus['breaker'];
  breaker_open_since: Date | null;
  last_record_at: Date | null;
  next_poll_at: Date | null;
}

const columns =
  'id, kind, name, config, secrets, secret_names, poll_interval_s, paused, created_at, streams, credits, last_poll_at, last_success_at, ' +
  'last_error, failing_since, breaker, breaker_open_since, last_record_at, next_poll_at';

function toRecord(row: ConnectorRow): ConnectorRecord {
  return {
    id: row.id,
    kind: row.kind,
    name: row.name,
    config: row.config,
    secrets: row.secrets,
    secretNames: row.secret_names,
    pollIntervalS: row.poll_interval_s,
    paused: row.paused,
    createdAt: row.created_at,
    streams: row.streams,
    credits: row.credits,
    lastPollAt: row.last_poll_at,
    lastSuccessAt: row.last_success_at,
    lastError: row.last_error,
    failingSince: row.failing_since,
    breaker: row.breaker,
    breakerOpenSince: row.breaker_open_since,
    lastRecordAt: row.last_record_at,
    nextPollAt: row.next_poll_at,
  };
}

export class ConnectorRepository {
  constructor(private readonly pool: pg.Pool) {}

  async insert(connector: NewConnector): Promise<ConnectorRecord> {
    const { rows } = await this.pool.query<ConnectorRow>(
      `INSERT INTO connectors (id, kind, name, config, secrets, secret_names, poll_interval_s)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${columns}`,
      [connector.id, connector.kind, connector.name, connector.config, connector.secrets, connector.secretNames, connector.pollIntervalS],
    );
    return toRecord(rows[0]);
  }

  /** Every connector, oldest first. */
  async list(): Promise<ConnectorRecord[]> {
    const { rows } = await this.pool.query<ConnectorRow>(`SELECT ${columns} FROM connectors ORDER BY created_at, id`);
    return rows.map(toRecord);
  }

  async find(id: string): Promise<ConnectorRecord | null> {
    const { rows } = await this.pool.query<ConnectorRow>(`SELECT ${columns} FROM connectors WHERE id = $1`, [id]);
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  /** The ids of the connectors that should be polled, for an instance looking for those nobody polls. */
  async runnableIds(): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>('SELECT id FROM connectors WHERE NOT paused');
    return rows.map((row) => row.id);
  }

  async setPaused(id: string, paused: boolean): Promise<ConnectorRecord | null> {
    const { rows } = await this.pool.query<ConnectorRow>(
      `UPDATE connectors SET paused = $2, next_poll_at = CASE WHEN $2 THEN NULL ELSE next_poll_at END
        WHERE id = $1 RETURNING ${columns}`,
      [id, paused],
    );
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  /** Deletes the record; the sessions it fed, and their data, stay. */
  async delete(id: string): Promise<ConnectorRecord | null> {
    const { rows } = await this.pool.query<ConnectorRow>(`DELETE FROM connectors WHERE id = $1 RETURNING ${columns}`, [id]);
    return rows.length === 0 ? null : toRecord(rows[0]);
  }

  async addStream(id: string, stream: ConnectorStreamRecord): Promise<void> {
    await this.pool.query(
      `UPDATE connectors SET streams = (SELECT coalesce(jsonb_agg(s), '[]'::jsonb) FROM jsonb_array_elements(streams) s
                                          WHERE s->>'key' <> $2) || jsonb_build_array($3::jsonb)
        WHERE id = $1`,
      [id, stream.key, JSON.stringify(stream)],
    );
  }

  /**
   * Replaces the connector's credit ledger with what `change` makes of it, under the row's lock:
   * two instances (one taking over while the other's last request is under way) spend one after
   * the other. Null when the connector is gone.
   */
  async changeCredits<T>(id: string, change: (stored: unknown) => { stored: unknown; answer: T }): Promise<T | null> {
    return withPooledClient(this.pool, async (client) => {
      await client.query('BEGIN');
      try {
        const { rows } = await client.query<{ credits: unknown }>('SELECT credits FROM connectors WHERE id = $1 FOR UPDATE', [id]);
        if (rows.length === 0) {
          await client.query('ROLLBACK');
          return null;
        }
        const { stored, answer } = change(rows[0].credits);
        await client.query('UPDATE connectors SET credits = $2 WHERE id = $1', [id, JSON.stringify(stored)]);
        await client.query('COMMIT');
        return answer;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      }
    });
  }

  /** Writes the status of a poll; false when the connector is gone or paused meanwhile (the poller then stops). */
  async writeStatus(id: string, status: ConnectorStatus): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      `UPDATE connectors SET last_poll_at = $2, last_success_at = $3, last_error = $4, failing_since = $5, breaker = $6,
              breaker_open_since = $7, last_record_at = $8, next_poll_at = $9
        WHERE id = $1 AND NOT paused`,
      [
        id,
        status.lastPollAt,
        status.lastSuccessAt,
        status.lastError,
        status.failingSince,
        status.breaker,
        status.breakerOpenSince,
        status.lastRecordAt,
        status.nextPollAt,
      ],
    );
    return rowCount === 1;
  }
}
