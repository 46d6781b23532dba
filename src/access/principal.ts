/**
 * Who is calling, once their credential is checked: an API key, an access token exchanged for
 * one, an identity provider's subject, the ingest token of one session, or nobody. Built once
 * per credential and cached with it, so a request pays for no allocation here.
 */
import { normalizeScopes, type Scope } from './scopes.ts';

export type PrincipalKind = 'key' | 'access-token' | 'oidc' | 'ingest' | 'anonymous';

/** Per-key limits, set when the key is created and enforced by the edges that serve it (http/rate-limits.ts, routes/sockets.ts). */
export interface KeyLimits {
  readonly requestsPerMinute?: number;
  readonly maxSockets?: number;
}

/** What an API key grants, as its record says (the cache's view of it, with no secret). */
export interface KeyGrant {
  readonly id: string;
  readonly scopes: readonly Scope[];
  readonly keyPrefix: string | null;
  /** Epoch milliseconds, or null for a key that does not expire. */
  readonly expiresAtMs: number | null;
  readonly revoked: boolean;
  readonly limits: KeyLimits;
}

/** What a check is against: a session by its id and its key (stream name, or null). */
export interface SessionRef {
  readonly id: string;
  readonly key: string | null;
}

const noLimits: KeyLimits = Object.freeze({});

export class Principal {
  private readonly granted: ReadonlySet<Scope>;

  private constructor(
    readonly kind: PrincipalKind,
    /** How the audit log names it: `key:<id>`, `oidc:<sub>`, `ingest:<sessionId>`, `anonymous`. */
    readonly actor: string,
    scopes: readonly Scope[],
    /** Sessions whose key starts with this, and only those; null for no limit. */
    readonly keyPrefix: string | null,
    /** The API key behind a key or an access token, so that revoking the key stops both. */
    readonly keyId: string | null,
    /** The one session an ingest token writes to and ends. */
    readonly sessionId: string | null,
    readonly limits: KeyLimits,
  ) {
    this.granted = new Set(scopes);
  }

  static key(grant: KeyGrant): Principal {
    return new Principal('key', `key:${grant.id}`, grant.scopes, grant.keyPrefix, grant.id, null, grant.limits);
  }

  /** A token carries the scopes and prefix it was issued with; the key's limits still apply. */
  static accessToken(keyId: string, scopes: readonly Scope[], keyPrefix: string | null, limits: KeyLimits): Principal {
    return new Principal('access-token', `key:${keyId}`, scopes, keyPrefix, keyId, null, limits);
  }

  static oidc(subject: string, scopes: readonly Scope[]): Principal {
    return new Principal('oidc', `oidc:${subject}`, scopes, null, null, null, noLimits);
  }

  /** Built by whoever checked the token against the session's stored hash. */
  static ingest(sessionId: string): Principal {
    return new Principal('ingest', `ingest:${sessionId}`, ['sessions:write'], null, null, sessionId, noLimits);
  }

  static readonly anonymous: Principal = new Principal('anonymous', 'anonymous', [], null, null, null, noLimits);

  /**
   * Whose rate limit and socket cap this caller counts against: its key (a token's, with it)
   * or its provider subject; null for one known only by its address (no credential, or an
   * ingest token, which only its own session can check).
   */
  get limitedAs(): string | null {
    return this.kind === 'key' || this.kind === 'access-token' || this.kind === 'oidc' ? this.actor : null;
  }

  can(scope: Scope): boolean {
    return this.granted.has(scope);
  }

  get scopes(): Scope[] {
    return normalizeScopes(this.granted);
  }

  /**
   * Whether the session is within this principal's reach: any session for an unprefixed
   * credential; for a prefixed one, a session whose key starts with the prefix (never one
   * whose key is null); for an ingest token, its own session only.
   */
  reaches(session: SessionRef): boolean {
    if (this.sessionId !== null) return session.id === this.sessionId;
    if (this.keyPrefix === null) return true;
    return session.key?.startsWith(this.keyPrefix) === true;
  }
}
