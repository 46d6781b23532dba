/**
 * API key records in PostgreSQL (migration 005). A key is found by the SHA-256 of its secret;
 * the secret itself is never stored. Lookups come from the authenticator's cache misses, so
 * they are batched like session lookups: a burst of unknown keys is a few statements, not one
 * each.
 */
import type pg from 'pg';
import { within } from '../deadlines.ts';
import { CoalescingQueue } from './coalescing-queue.ts';
import { DatabaseUnreachableError, isDatabaseUnavailable } from './database.ts';

export interface ApiKeyRecord {
  id: string;
  name: string;
  keyHash: Buffer;
  scopes: string[];
  keyPrefix: string | null;
  limits: Record<string, unknown>;
  /** The actor that created it (`key:<id>`, `oidc:<sub>`, `cli`). */
  createdBy: string;
  createdAt: Date;
  expiresAt: Date | null;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
}

export interface NewApiKey {
  id: string;
  name: string;
  keyHash: Buffer;
  scopes: readonly string[];
  keyPrefix: string | null;
  limits: Record<string, unknown>;
  createdBy: string;
  expiresAt: Date | null;
}

export interface KeyUse {
  id: string;
  at: Date;
}

interface ApiKeyRow {
  id: string;
  name: string;
  key_hash: Buffer;
  scopes: string[];
  key_prefix: string | null;
  limits: Record<string, unknown>;
  created_by: string;
  created_at: Date;
  expires_at: Date | null;
  revoked_at: Date | null;
  last_used_at: Date | null;
}

const columns = 'id, name, key_hash, scopes, key_prefix, limits, created_by, created_at, expires_at, revoked_at, last_used_at';
/** The same, of the key aliased `k`. */
const keyColumns = columns
  .split(', ')
  .map((column) => `k.${column}`)
  .join(', ');
const findByHashes = { name: 'wavehouse-find-api-keys', text: `SELECT ${columns} FROM api_keys WHERE key_hash = ANY($1::bytea[])` };
const findById = { name: 'wavehouse-find-api-key', text: `SELECT ${columns} FROM api_keys WHERE id = $1` };
/** The most keys one SELECT looks up. */
const maxFindBatch = 256;
const defaultLookupTimeoutMs = 10_000;
/** SQLSTATE invalid_text_representation: an id that is not a UUID, which is no key. */
const notAUuid = '22P02';

function toRecord(row: ApiKeyRow): ApiKeyRecord {
  return {
    id: row.id,
    name: row.name,
    keyHash: row.key_hash,
    scopes: row.scopes,
    keyPrefix: row.key_prefix,
    limits: row.limits,
    createdBy: row.created_by,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}

interface PendingFind {
  hash: Buffer;
  resolve: (record: ApiKeyRecord | null) => void;
  reject: (error: unknown) => void;
}

export interface ApiKeyRepositoryOptions {
  pool: pg.Pool;
  /** How long one batched lookup waits for its answer before it and those behind it fail as the database out of reach. Default 10 s. */
  lookupTimeoutMs?: number;
}

export class ApiKeyRepository {
  private readonly findQueue = new CoalescingQueue<PendingFind>({ maxBatch: maxFindBatch, handle: (batch) => this.findBatch(batch) });
  private readonly pool: pg.Pool;
  private readonly lookupTimeoutMs: number;

  constructor({ pool, lookupTimeoutMs = defaultLookupTimeoutMs }: ApiKeyRepositoryOptions) {
    this.pool = pool;
    this.lookupTimeoutMs = lookupTimeoutMs;
  }

  async create(key: NewApiKey): Promise<ApiKeyRecord> {
    const { rows } = await this.pool.query<ApiKeyRow>(
      `INSERT INTO api_keys (id, name, key_hash, scopes, key_prefix, limits, created_by, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING ${columns}`,
      [key.id, key.name, key.keyHash, key.scopes, key.keyPrefix, JSON.stringify(key.limits), key.createdBy, key.expiresAt],
    );
    return toRecord(rows[0]);
  }

  /** The key whose secret hashes to `hash`, or null. Lookups made while one is in flight go together in the next. */
  findByHash(hash: Buffer): Promise<ApiKeyRecord | null> {
    return new Promise((resolve, reject) => this.findQueue.push({ hash, resolve, reject }));
  }

  private async findBatch(batch: PendingFind[]): Promise<void> {
    const answer = this.pool.query<ApiKeyRow>({ ...findByHashes, values: [batch.map((pending) => pending.hash)] });
    try {
      const { rows } = await within(answer, this.lookupTimeoutMs, () => {
        throw new DatabaseUnreachableError(new Error(`an API key lookup had no answer within ${this.lookupTimeoutMs} ms`));
      });
      const byHash = new Map(rows.map((row) => [row.key_hash.toString('base64'), row]));
      for (const pending of batch) {
        const row = byHash.get(pending.hash.toString('base64'));
        pending.resolve(row === undefined ? null : toRecord(row));
      }
    } catch (error) {
      const everyone = isDatabaseUnavailable(error) ? [...batch, ...this.findQueue.takeAll()] : batch;
      for (const pending of everyone) pending.reject(error);
    }
  }

  async findById(id: string): Promise<ApiKeyRecord | null> {
    try {
      const { rows } = await this.pool.query<ApiKeyRow>({ ...findById, values: [id] });
      return rows.length === 0 ? null : toRecord(rows[0]);
    } catch (error) {
      if ((error as { code?: unknown }).code === notAUuid) return null;
      throw error;
    }
  }

  /** Every key, revoked and expired ones included, newest first, at most `limit`. */
  async list(limit = 1000): Promise<ApiKeyRecord[]> {
    const { rows } = await this.pool.query<ApiKeyRow>(`SELECT ${columns} FROM api_keys ORDER BY created_at DESC, id LIMIT $1`, [limit]);
    return rows.map(toRecord);
  }

  /**
   * Revokes the key; a key already revoked keeps its first revocation time. `revokedNow` says
   * whether this call revoked it, so that it is audited once. Null for no such key.
   */
  async revoke(id: string): Promise<{ record: ApiKeyRecord; revokedNow: boolean } | null> {
    try {
      const { rows } = await this.pool.query<ApiKeyRow & { revoked_now: boolean }>(
        `WITH before AS (SELECT id, revoked_at FROM api_keys WHERE id = $1 FOR UPDATE)
         UPDATE api_keys k SET revoked_at = COALESCE(k.revoked_at, now()) FROM before b WHERE k.id = b.id
         RETURNING ${keyColumns}, b.revoked_at IS NULL AS revoked_now`,
        [id],
      );
      return rows.length === 0 ? null : { record: toRecord(rows[0]), revokedNow: rows[0].revoked_now };
    } catch (error) {
      if ((error as { code?: unknown }).code === notAUuid) return null;
      throw error;
    }
  }

  /** Moves each key's last-used time forward to `at` (never back: uses may be recorded late). */
  async recordUse(uses: readonly KeyUse[]): Promise<void> {
    if (uses.length === 0) return;
    await this.pool.query(
      `UPDATE api_keys k SET last_used_at = GREATEST(k.last_used_at, u.at)
         FROM unnest($1::uuid[], $2::timestamptz[]) AS u(id, at) WHERE k.id = u.id`,
      [uses.map((use) => use.id), uses.map((use) => use.at)],
    );
  }
}
