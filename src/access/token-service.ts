/**
 * Exchanging an API key for tokens, refreshing them, and logging out (POST /auth/token,
 * /auth/refresh, /auth/logout). An exchange starts a family of refresh tokens; each refresh
 * uses up its token and answers the next pair; a token used twice revokes its family (a copy
 * was made: the owner and the thief both have to exchange their key again), and so does a
 * logout. Access tokens already issued run out on their own (15 minutes by default); the
 * key's revocation stops them at once.
 */
import { randomUUID } from 'node:crypto';
import type { NewRefreshToken, RotateOutcome } from '../storage/refresh-token-repository.ts';
import type { AccessTokens } from './access-tokens.ts';
import type { AuditContext, AuditTrail } from './audit-trail.ts';
import type { Refused } from './authenticator.ts';
import { hashSecret, isRefreshToken, newRefreshToken } from './key-format.ts';
import type { Principal } from './principal.ts';
import { knownScopes } from './scopes.ts';

export interface RefreshTokenStore {
  startFamily(familyId: string, keyId: string, first: NewRefreshToken, now: Date): Promise<void>;
  rotate(hash: Buffer, next: NewRefreshToken, now: Date): Promise<RotateOutcome>;
  familyOf(hash: Buffer): Promise<{ familyId: string; keyId: string } | null>;
  revokeFamily(familyId: string, reason: 'logout' | 'reuse', now: Date): Promise<boolean>;
}

export interface TokenServiceOptions {
  readonly accessTokens: AccessTokens;
  readonly store: RefreshTokenStore;
  readonly audit: Pick<AuditTrail, 'record' | 'refused'>;
  /** How long a refresh token may be used. Default 30 days. */
  readonly refreshTtlMs?: number;
  readonly clock?: () => number;
}

export interface TokenPair {
  readonly accessToken: string;
  readonly refreshToken: string;
  /** Seconds until the access token expires. */
  readonly expiresIn: number;
}

export type PairResult = { readonly ok: true; readonly pair: TokenPair } | Refused;

/** Where a call came from, for the audit: the actor is known only once the token is. */
export type Caller = Omit<AuditContext, 'actor'>;

const refusedAs = {
  unknown: 'invalid_credential',
  reused: 'credential_revoked',
  revoked: 'credential_revoked',
  key_revoked: 'credential_revoked',
  expired: 'credential_expired',
  key_expired: 'credential_expired',
} as const satisfies Record<Exclude<RotateOutcome['outcome'], 'rotated'>, Refused['code']>;

export class TokenService {
  private readonly refreshTtlMs: number;
  private readonly clock: () => number;

  constructor(private readonly options: TokenServiceOptions) {
    this.refreshTtlMs = options.refreshTtlMs ?? 30 * 24 * 60 * 60 * 1000;
    this.clock = options.clock ?? Date.now;
  }

  /** A first pair for an API key; any other principal (a token, a provider's subject) is refused. */
  async exchange(principal: Principal, caller: Caller): Promise<PairResult> {
    if (principal.kind !== 'key' || principal.keyId === null) {
      this.options.audit.refused({ ip: caller.ip, code: 'invalid_credential' });
      return { ok: false, code: 'invalid_credential' };
    }
    const now = this.clock();
    const refresh = this.nextRefreshToken(now);
    await this.options.store.startFamily(randomUUID(), principal.keyId, refresh.stored, new Date(now));
    const access = await this.options.accessTokens.issue({
      keyId: principal.keyId,
      scopes: principal.scopes,
      keyPrefix: principal.keyPrefix,
    });
    return { ok: true, pair: { ...access, refreshToken: refresh.secret } };
  }

  /** The next pair for a refresh token, which is used up; a token used before revokes its family. */
  async refresh(refreshToken: string, caller: Caller): Promise<PairResult> {
    if (!isRefreshToken(refreshToken)) return this.refuse('invalid_credential', caller, null);
    const now = this.clock();
    const next = this.nextRefreshToken(now);
    const rotated = await this.options.store.rotate(hashSecret(refreshToken), next.stored, new Date(now));
    if (rotated.outcome === 'unknown') return this.refuse('invalid_credential', caller, null);
    if (rotated.outcome !== 'rotated') {
      if (rotated.outcome === 'reused' && rotated.revokedNow) {
        this.options.audit.record(
          { ...caller, actor: `key:${rotated.keyId}` },
          { action: 'token_family.revoke', target: rotated.familyId, outcome: 'reuse' },
        );
      }
      return this.refuse(refusedAs[rotated.outcome], caller, rotated.keyId);
    }
    const { key } = rotated;
    const access = await this.options.accessTokens.issue({ keyId: key.id, scopes: knownScopes(key.scopes), keyPrefix: key.keyPrefix });
    return { ok: true, pair: { ...access, refreshToken: next.secret } };
  }

  /** Revokes the family of a refresh token, used or not; logging out twice is no error. */
  async logout(refreshToken: string, caller: Caller): Promise<{ readonly ok: true } | Refused> {
    const family = isRefreshToken(refreshToken) ? await this.options.store.familyOf(hashSecret(refreshToken)) : null;
    if (family === null) return this.refuse('invalid_credential', caller, null);
    if (await this.options.store.revokeFamily(family.familyId, 'logout', new Date(this.clock()))) {
      this.options.audit.record(
        { ...caller, actor: `key:${family.keyId}` },
        { action: 'token_family.revoke', target: family.familyId, outcome: 'success' },
      );
    }
    return { ok: true };
  }

  private nextRefreshToken(nowMs: number): { secret: string; stored: NewRefreshToken } {
    const { secret, hash } = newRefreshToken();
    return { secret, stored: { hash, expiresAt: new Date(nowMs + this.refreshTtlMs) } };
  }

  private refuse(code: Refused['code'], caller: Caller, keyId: string | null): Refused {
    this.options.audit.refused({ ip: caller.ip, code, keyId });
    return { ok: false, code };
  }
}
