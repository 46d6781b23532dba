/**
 * Turns a request's credential into a Principal, or a typed refusal. On the hot path: a key,
 * or a token already verified, is answered from memory, in a few microseconds (a SHA-256 and
 * two map lookups), never from the database.
 *
 * The caches, each bounded in entries (principle 2) and in time:
 * - keys by id (`maxCachedKeys`, `cacheTtlMs`): each key's grant and Principal, loaded from
 *   the database on a miss. A key is seen again within `cacheTtlMs` of any change: that TTL is
 *   how long another instance may still accept a revoked key when no broadcast tells it
 *   (revocation.ts); `revoked(keyId)` ends it at once on this one.
 * - key hashes to ids (`maxCachedKeys`, `cacheTtlMs`), and hashes known to be no key
 *   (`maxUnknownKeys`, `cacheTtlMs`), so a client retrying a wrong key asks the database once
 *   a TTL, while a flood of different wrong keys churns that cache alone, not the keys'.
 * - verified JWTs by their hash (`maxCachedTokens`, until each one's exp), so a token's
 *   signature is checked once, not on every request. Its key's revocation is still checked on
 *   every use, against the keys' cache.
 */
import { hash } from 'node:crypto';
import { decodeJwt } from 'jose';
import type { ApiKeyRecord } from '../storage/api-key-repository.ts';
import type { AccessTokens, TokenGrant } from './access-tokens.ts';
import type { AuditTrail } from './audit-trail.ts';
import type { PresentedCredential } from './bearer.ts';
import { BoundedCache } from './bounded-cache.ts';
import { hashSecret, sameHash } from './key-format.ts';
import type { LastUsedTracker } from './last-used.ts';
import type { OidcVerifier } from './oidc-verifier.ts';
import type { RefusalCode } from './policy.ts';
import { type KeyGrant, type KeyLimits, Principal } from './principal.ts';
import { knownScopes } from './scopes.ts';

/** Where keys are looked up (ApiKeyRepository). */
export interface KeyStore {
  findByHash(hash: Buffer): Promise<ApiKeyRecord | null>;
  findById(id: string): Promise<ApiKeyRecord | null>;
}

export interface AuthenticatorOptions {
  readonly keys: KeyStore;
  /** Our own access tokens; without, a JWT of our issuer is refused. */
  readonly accessTokens?: AccessTokens;
  /** An identity provider's tokens; without, a JWT of another issuer is refused. */
  readonly oidc?: OidcVerifier;
  /** Where refusals are counted. */
  readonly audit?: Pick<AuditTrail, 'refused'>;
  /** Where key uses are noted. */
  readonly lastUsed?: Pick<LastUsedTracker, 'used'>;
  /** How long a key's record is trusted without asking the database again. Default 30 s. */
  readonly cacheTtlMs?: number;
  /** Default 10,000. */
  readonly maxCachedKeys?: number;
  /** Default 10,000. */
  readonly maxCachedTokens?: number;
  /** Default 1,000. */
  readonly maxUnknownKeys?: number;
  readonly clock?: () => number;
}

export type Refused = { readonly ok: false; readonly code: RefusalCode };

export type Authentication = { readonly ok: true; readonly principal: Principal } | Refused;

/** The client a credential came from, for the audit of refusals. */
export interface Client {
  readonly ip: string | null;
}

interface CachedKey {
  readonly grant: KeyGrant;
  readonly principal: Principal;
}

interface CachedToken {
  readonly principal: Principal;
  /** The key a token of ours was issued for; null for a provider's token. */
  readonly keyId: string | null;
}

/** An outcome, and the key a refused credential named (expired or revoked), for the audit. */
interface Checked {
  readonly outcome: Authentication;
  readonly keyId: string | null;
}

const authenticatedAnonymous: Authentication = Object.freeze({ ok: true, principal: Principal.anonymous });
const invalid: Refused = Object.freeze({ ok: false, code: 'invalid_credential' });
const expired: Refused = Object.freeze({ ok: false, code: 'credential_expired' });
const revoked: Refused = Object.freeze({ ok: false, code: 'credential_revoked' });

/** A key's limits as stored: only the known ones, and only positive integers. */
function limitsOf(stored: Record<string, unknown>): KeyLimits {
  const limits: { requestsPerMinute?: number; maxSockets?: number } = {};
  for (const name of ['requestsPerMinute', 'maxSockets'] as const) {
    const value = stored[name];
    if (typeof value === 'number' && Number.isSafeInteger(value) && value > 0) limits[name] = value;
  }
  return Object.freeze(limits);
}

function grantOf(record: ApiKeyRecord): KeyGrant {
  return Object.freeze({
    id: record.id,
    scopes: knownScopes(record.scopes),
    keyPrefix: record.keyPrefix,
    expiresAtMs: record.expiresAt === null ? null : record.expiresAt.getTime(),
    revoked: record.revokedAt !== null,
    limits: limitsOf(record.limits),
  });
}

function cachedKeyOf(grant: KeyGrant): CachedKey {
  return { grant, principal: Principal.key(grant) };
}

export class Authenticator {
  private readonly keys: KeyStore;
  private readonly accessTokens: AccessTokens | undefined;
  private readonly oidc: OidcVerifier | undefined;
  private readonly audit: Pick<AuditTrail, 'refused'> | undefined;
  private readonly lastUsed: Pick<LastUsedTracker, 'used'> | undefined;
  private readonly cacheTtlMs: number;
  private readonly clock: () => number;
  private readonly keysById: BoundedCache<string, CachedKey>;
  private readonly idsByHash: BoundedCache<string, string>;
  private readonly unknownHashes: BoundedCache<string, true>;
  private readonly tokens: BoundedCache<string, CachedToken>;
  /** Loads in flight, so that concurrent requests with one uncached key make one lookup. */
  private readonly loadingByHash = new Map<string, Promise<CachedKey | null>>();
  private readonly loadingById = new Map<string, Promise<CachedKey | null>>();

  constructor(options: AuthenticatorOptions) {
    this.keys = options.keys;
    this.accessTokens = options.accessTokens;
    this.oidc = options.oidc;
    this.audit = options.audit;
    this.lastUsed = options.lastUsed;
    this.cacheTtlMs = options.cacheTtlMs ?? 30_000;
    this.clock = options.clock ?? Date.now;
    if (this.accessTokens !== undefined && this.oidc !== undefined && this.accessTokens.issuer === this.oidc.issuer) {
      throw new Error(`our access tokens and the identity provider's are told apart by issuer, so they cannot share ${this.oidc.issuer}`);
    }
    const clock = this.clock;
    const maxKeys = options.maxCachedKeys ?? 10_000;
    this.keysById = new BoundedCache({ maxEntries: maxKeys, clock });
    this.idsByHash = new BoundedCache({ maxEntries: maxKeys, clock });
    this.unknownHashes = new BoundedCache({ maxEntries: options.maxUnknownKeys ?? 1_000, clock });
    this.tokens = new BoundedCache({ maxEntries: options.maxCachedTokens ?? 10_000, clock });
  }

  /**
   * The principal a credential stands for, or why it is refused; no credential is the
   * anonymous principal (whether that may do anything is policy.ts's call). Refusals are
   * counted in the audit trail. Rejects only when the database or the identity provider cannot
   * be reached, which is no verdict on the credential.
   */
  async authenticate(credential: PresentedCredential, client: Client): Promise<Authentication> {
    if (credential === 'absent') return authenticatedAnonymous;
    const { outcome, keyId } =
      // An opaque token can only be a session's ingest token, which only its session checks.
      credential === 'malformed' || credential.kind === 'opaque'
        ? { outcome: invalid, keyId: null }
        : credential.kind === 'api-key'
          ? await this.checkKey(credential.text)
          : await this.checkJwt(credential.text);
    if (!outcome.ok) this.audit?.refused({ ip: client.ip, code: outcome.code, keyId });
    return outcome;
  }

  /**
   * Forgets the key and refuses it from now on, here: called by the instance that revoked it,
   * and by the broadcast's subscriber on every other one. Its access tokens stop with it.
   */
  revoked(keyId: string): void {
    const cached = this.keysById.get(keyId);
    const grant: KeyGrant =
      cached !== undefined
        ? { ...cached.grant, revoked: true }
        : { id: keyId, scopes: [], keyPrefix: null, expiresAtMs: null, revoked: true, limits: {} };
    this.keysById.set(keyId, cachedKeyOf(Object.freeze(grant)), this.clock() + this.cacheTtlMs);
  }

  private async checkKey(text: string): Promise<Checked> {
    const keyHash = hashSecret(text);
    const hashKey = keyHash.toString('base64');
    const id = this.idsByHash.get(hashKey);
    const key = (id === undefined ? undefined : this.keysById.get(id)) ?? (await this.loadByHash(keyHash, hashKey));
    return key === null ? { outcome: invalid, keyId: null } : this.use(key, key.principal);
  }

  /** `principal`, if its key may be used now (the use is then noted), else why not. */
  private use(key: CachedKey, principal: Principal): Checked {
    const now = this.clock();
    const { grant } = key;
    if (grant.revoked) return { outcome: revoked, keyId: grant.id };
    if (grant.expiresAtMs !== null && grant.expiresAtMs <= now) return { outcome: expired, keyId: grant.id };
    this.lastUsed?.used(grant.id, now);
    return { outcome: { ok: true, principal }, keyId: null };
  }

  private loadByHash(keyHash: Buffer, hashKey: string): Promise<CachedKey | null> {
    if (this.unknownHashes.get(hashKey) !== undefined) return Promise.resolve(null);
    let loading = this.loadingByHash.get(hashKey);
    if (loading === undefined) {
      loading = this.keys
        .findByHash(keyHash)
        .then((record) => {
          if (record === null || !sameHash(record.keyHash, keyHash)) {
            this.unknownHashes.set(hashKey, true, this.clock() + this.cacheTtlMs);
            return null;
          }
          this.idsByHash.set(hashKey, record.id, this.clock() + this.cacheTtlMs);
          return this.remember(record);
        })
        .finally(() => this.loadingByHash.delete(hashKey));
      this.loadingByHash.set(hashKey, loading);
    }
    return loading;
  }

  private keyById(id: string): CachedKey | Promise<CachedKey | null> {
    const cached = this.keysById.get(id);
    if (cached !== undefined) return cached;
    let loading = this.loadingById.get(id);
    if (loading === undefined) {
      loading = this.keys
        .findById(id)
        .then((record) => (record === null ? null : this.remember(record)))
        .finally(() => this.loadingById.delete(id));
      this.loadingById.set(id, loading);
    }
    return loading;
  }

  /**
   * Caches a key as loaded, unless it was revoked here while it loaded: a revocation is never
   * undone by a load that started before it.
   */
  private remember(record: ApiKeyRecord): CachedKey {
    const current = this.keysById.get(record.id);
    if (current?.grant.revoked) return current;
    const key = cachedKeyOf(grantOf(record));
    this.keysById.set(record.id, key, this.clock() + this.cacheTtlMs);
    return key;
  }

  private async checkJwt(token: string): Promise<Checked> {
    const tokenKey = hash('sha256', token, 'base64');
    const cached = this.tokens.get(tokenKey) ?? (await this.verifyJwt(token, tokenKey));
    if (!('principal' in cached)) return { outcome: cached, keyId: null };
    if (cached.keyId === null) return { outcome: { ok: true, principal: cached.principal }, keyId: null };
    const key = await this.keyById(cached.keyId);
    return key === null ? { outcome: invalid, keyId: null } : this.use(key, cached.principal);
  }

  /** Verifies a JWT not seen yet, by the verifier of its issuer, and caches it until it expires. */
  private async verifyJwt(token: string, tokenKey: string): Promise<CachedToken | Refused> {
    let issuer: unknown;
    try {
      issuer = decodeJwt(token).iss;
    } catch {
      return invalid;
    }
    if (this.accessTokens !== undefined && issuer === this.accessTokens.issuer) {
      const verified = await this.accessTokens.verify(token);
      if (!verified.ok) return verified;
      const key = await this.keyById(verified.grant.keyId);
      if (key === null) return invalid;
      return this.cacheToken(
        tokenKey,
        { principal: this.tokenPrincipal(verified.grant, key.grant), keyId: key.grant.id },
        verified.expiresAtMs,
      );
    }
    if (this.oidc !== undefined && issuer === this.oidc.issuer) {
      const verified = await this.oidc.verify(token);
      if (!verified.ok) return verified;
      const principal = Principal.oidc(verified.identity.subject, verified.identity.scopes);
      return this.cacheToken(tokenKey, { principal, keyId: null }, verified.expiresAtMs);
    }
    return invalid;
  }

  private tokenPrincipal(token: TokenGrant, key: KeyGrant): Principal {
    return Principal.accessToken(token.keyId, token.scopes, token.keyPrefix, key.limits);
  }

  private cacheToken(tokenKey: string, token: CachedToken, expiresAtMs: number): CachedToken {
    this.tokens.set(tokenKey, token, expiresAtMs);
    return token;
  }
}
