/**
 * Refresh-token families in PostgreSQL (migration 005). A refresh uses up its token and adds
 * the next in one statement: the UPDATE that marks the token used matches only a token not
 * used yet, so of two refreshes racing with one token exactly one wins, and the other finds
 * it used, which is what a stolen copy looks like, and revokes the family.
 */
import type pg from 'pg';

/** The grant of the key a family belongs to, as the refresh read it. */
export interface RefreshedKey {
  id: string;
  scopes: string[];
  keyPrefix: string | null;
  limits: Record<string, unknown>;
}

export type RotateOutcome =
  | { outcome: 'rotated'; familyId: string; key: RefreshedKey }
  /** The token had been used already: the family is revoked (`revokedNow` by this call). */
  | { outcome: 'reused'; familyId: string; keyId: string; revokedNow: boolean }
  | { outcome: 'revoked' | 'expired' | 'key_revoked' | 'key_expired'; familyId: string; keyId: string }
  | { outcome: 'unknown' };

export interface NewRefreshToken {
  hash: Buffer;
  expiresAt: Date;
}

interface RotatedRow {
  family_id: string;
  key_id: string;
  scopes: string[];
  key_prefix: string | null;
  limits: Record<string, unknown>;
}

interface DiagnosisRow {
  family_id: string;
  key_id: string;
  used: boolean;
  expired: boolean;
  family_revoked: boolean;
  key_revoked: boolean;
  key_expired: boolean;
}

/**
 * Uses up the token ($1) if it is unused, unexpired, of a live family and of a valid key at
 * $3, and adds its successor ($2, expiring $4) to the family, in one statement.
 */
const rotate = {
  name: 'wavehouse-rotate-refresh-token',
  text: `WITH used AS (
           UPDATE refresh_tokens t SET used_at = $3
             FROM refresh_families f, api_keys k
            WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > $3
              AND f.id = t.family_id AND f.revoked_at IS NULL
              AND k.id = f.key_id AND k.revoked_at IS NULL AND (k.expires_at IS NULL OR k.expires_at > $3)
           RETURNING t.family_id, k.id AS key_id, k.scopes, k.key_prefix, k.limits
         ), added AS (
           INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at)
           SELECT $2, family_id, $3, $4 FROM used
         )
         SELECT family_id, key_id, scopes, key_prefix, limits FROM used`,
};

export interface RefreshTokenRepositoryOptions {
  pool: pg.Pool;
}

export class RefreshTokenRepository {
  private readonly pool: pg.Pool;

  constructor({ pool }: RefreshTokenRepositoryOptions) {
    this.pool = pool;
  }

  /** Starts a family for key `keyId` with its first token, in one statement. */
  async startFamily(familyId: string, keyId: string, first: NewRefreshToken, now: Date): Promise<void> {
    await this.pool.query(
      `WITH family AS (INSERT INTO refresh_families (id, key_id, created_at) VALUES ($1, $2, $5) RETURNING id)
       INSERT INTO refresh_tokens (token_hash, family_id, created_at, expires_at) SELECT $3, id, $5, $4 FROM family`,
      [familyId, keyId, first.hash, first.expiresAt, now],
    );
  }

  /**
   * Uses up the token whose hash is `hash` and adds `next` to its family. When the token cannot
   * be used, says why; a token used before revokes its family.
   */
  async rotate(hash: Buffer, next: NewRefreshToken, now: Date): Promise<RotateOutcome> {
    const { rows } = await this.pool.query<RotatedRow>({ ...rotate, values: [hash, next.hash, now, next.expiresAt] });
    if (rows.length === 1) {
      const [row] = rows;
      return {
        outcome: 'rotated',
        familyId: row.family_id,
        key: { id: row.key_id, scopes: row.scopes, keyPrefix: row.key_prefix, limits: row.limits },
      };
    }
    return this.whyNot(hash, now);
  }

  /** Why the token could not be used; revokes its family if it was used before. */
  private async whyNot(hash: Buffer, now: Date): Promise<RotateOutcome> {
    const { rows } = await this.pool.query<DiagnosisRow>(
      `SELECT t.family_id, f.key_id, t.used_at IS NOT NULL AS used, t.expires_at <= $2 AS expired,
              f.revoked_at IS NOT NULL AS family_revoked, k.revoked_at IS NOT NULL AS key_revoked,
              COALESCE(k.expires_at <= $2, false) AS key_expired
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id JOIN api_keys k ON k.id = f.key_id
        WHERE t.token_hash = $1`,
      [hash, now],
    );
    if (rows.length === 0) return { outcome: 'unknown' };
    const [row] = rows;
    const of = { familyId: row.family_id, keyId: row.key_id };
    if (row.family_revoked) return { outcome: 'revoked', ...of };
    if (row.used) return { outcome: 'reused', ...of, revokedNow: await this.revokeFamily(row.family_id, 'reuse', now) };
    if (row.key_revoked) return { outcome: 'key_revoked', ...of };
    if (row.key_expired) return { outcome: 'key_expired', ...of };
    return { outcome: 'expired', ...of };
  }

  /** Revokes the family; true if this call did (it was live until now). */
  async revokeFamily(familyId: string, reason: 'logout' | 'reuse', now: Date): Promise<boolean> {
    const { rowCount } = await this.pool.query(
      'UPDATE refresh_families SET revoked_at = $3, revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL',
      [familyId, reason, now],
    );
    return rowCount === 1;
  }

  /** The family and key of a token, used or not, or null for no such token (logout). */
  async familyOf(hash: Buffer): Promise<{ familyId: string; keyId: string } | null> {
    const { rows } = await this.pool.query<{ family_id: string; key_id: string }>(
      'SELECT t.family_id, f.key_id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1',
      [hash],
    );
    return rows.length === 0 ? null : { familyId: rows[0].family_id, keyId: rows[0].key_id };
  }

  /**
   * Deletes tokens that expired before `before`, at most `limit` (access-sweeper.ts). A used
   * token is kept until it expires, so that its replay is still caught as one until then.
   * Rows another instance's sweep holds are skipped, not waited for.
   */
  async deleteExpired(before: Date, limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM refresh_tokens WHERE token_hash IN (
         SELECT token_hash FROM refresh_tokens WHERE expires_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED)`,
      [before, limit],
    );
    return rowCount ?? 0;
  }

  /**
   * Deletes up to `limit` families left without tokens, all expired and deleted. Nothing can
   * grow such a family again: a family starts with its first token in one statement, and
   * grows only by using one of its tokens.
   */
  async deleteEmptyFamilies(limit: number): Promise<number> {
    const { rowCount } = await this.pool.query(
      `DELETE FROM refresh_families WHERE id IN (
         SELECT f.id FROM refresh_families f
          WHERE NOT EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = f.id)
          LIMIT $1 FOR UPDATE SKIP LOCKED)`,
      [limit],
    );
    return rowCount ?? 0;
  }
}
