/**
 * Access tokens: short-lived JWTs (15 minutes by default) that an API key is exchanged for
 * (POST /auth/token), signed with jose. A token carries its key's id (`sub`), scopes (`scope`,
 * space-separated as in RFC 8693) and prefix (`key_prefix`, absent for none), so a request
 * with one needs no lookup; the key's revocation is still checked on every use, from the
 * authenticator's cache, so revoking a key stops its live tokens too.
 *
 * Rotation. Every token names its key in the header (`kid`); the verifier accepts the current
 * signing key and a list of previous public keys. To rotate with several instances: give
 * every instance the new key's public JWK as a previous key; then make the new key the
 * signing key everywhere, with the old key's public JWK as the previous one; once the access
 * token lifetime has passed, drop the old key. At no step does a live token meet an instance
 * that cannot verify it.
 */
import type { KeyObject } from 'node:crypto';
import { errors, type JWTHeaderParameters, type JWTPayload, jwtVerify, SignJWT } from 'jose';
import type { RefusalCode } from './policy.ts';
import { isKeyPrefix, parseScopes, type Scope } from './scopes.ts';
import { type SigningKey, type VerificationKey, verificationKeyOf } from './signing-keys.ts';

export interface AccessTokenOptions {
  readonly signingKey: SigningKey;
  /** Keys still accepted after a rotation, until the tokens they signed have expired. */
  readonly previousKeys?: readonly VerificationKey[];
  /** `iss` of our tokens; what tells them apart from an identity provider's. Default `wavehouse`. */
  readonly issuer?: string;
  /** `aud` of our tokens. Default `wavehouse`. */
  readonly audience?: string;
  /** Lifetime in seconds. Default 900 (15 minutes). */
  readonly ttlS?: number;
  /** Clock skew tolerated on exp and nbf, in seconds, between the instances. Default 5. */
  readonly clockToleranceS?: number;
  readonly clock?: () => number;
}

/** What a token is issued for: the key it was exchanged for, and that key's grant. */
export interface TokenGrant {
  readonly keyId: string;
  readonly scopes: readonly Scope[];
  readonly keyPrefix: string | null;
}

export interface IssuedAccessToken {
  readonly accessToken: string;
  /** Seconds until it expires. */
  readonly expiresIn: number;
}

/** Why a JWT is refused: not one this server accepts, or one that has expired. */
export interface TokenRefusal {
  readonly ok: false;
  readonly code: Extract<RefusalCode, 'invalid_credential' | 'credential_expired'>;
}

export type VerifiedToken = { readonly ok: true; readonly grant: TokenGrant; readonly expiresAtMs: number } | TokenRefusal;

/** RFC 9068's type for access tokens: an ID token or any other JWT of the same issuer is not one. */
const tokenType = 'at+jwt';
export const invalidToken: TokenRefusal = Object.freeze({ ok: false, code: 'invalid_credential' });
const expiredToken: TokenRefusal = Object.freeze({ ok: false, code: 'credential_expired' });

/**
 * A refusal for whatever jose refused. Expiry is told apart, so a client knows to refresh; it
 * is checked after the signature, so only a genuine token is ever called expired.
 */
export function refusalOf(error: unknown): TokenRefusal {
  return error instanceof errors.JWTExpired ? expiredToken : invalidToken;
}

export class AccessTokens {
  readonly issuer: string;
  readonly audience: string;
  readonly ttlS: number;
  private readonly signingKey: SigningKey;
  private readonly keys: ReadonlyMap<string, VerificationKey>;
  private readonly algorithms: string[];
  private readonly clockToleranceS: number;
  private readonly clock: () => number;

  constructor(options: AccessTokenOptions) {
    this.signingKey = options.signingKey;
    this.issuer = options.issuer ?? 'wavehouse';
    this.audience = options.audience ?? 'wavehouse';
    this.ttlS = options.ttlS ?? 900;
    this.clockToleranceS = options.clockToleranceS ?? 5;
    this.clock = options.clock ?? Date.now;
    if (!Number.isSafeInteger(this.ttlS) || this.ttlS < 1) throw new RangeError(`an access token lives at least 1 s, not ${this.ttlS}`);
    const keys = [verificationKeyOf(options.signingKey), ...(options.previousKeys ?? [])];
    this.keys = new Map(keys.map((key) => [key.kid, key]));
    if (this.keys.size !== keys.length) throw new Error('two access-token keys have the same kid');
    this.algorithms = [...new Set(keys.map((key) => key.alg))];
  }

  async issue(grant: TokenGrant): Promise<IssuedAccessToken> {
    const nowS = Math.floor(this.clock() / 1000);
    const claims: JWTPayload = { scope: grant.scopes.join(' ') };
    if (grant.keyPrefix !== null) claims.key_prefix = grant.keyPrefix;
    const accessToken = await new SignJWT(claims)
      .setProtectedHeader({ alg: this.signingKey.alg, kid: this.signingKey.kid, typ: tokenType })
      .setIssuer(this.issuer)
      .setAudience(this.audience)
      .setSubject(grant.keyId)
      .setIssuedAt(nowS)
      .setExpirationTime(nowS + this.ttlS)
      .sign(this.signingKey.privateKey);
    return { accessToken, expiresIn: this.ttlS };
  }

  /** The grant a token of ours carries, or why it is refused. Never throws. */
  async verify(token: string): Promise<VerifiedToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keyOf, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.algorithms,
        typ: tokenType,
        requiredClaims: ['sub', 'exp', 'iat'],
        clockTolerance: this.clockToleranceS,
        currentDate: new Date(this.clock()),
      }));
    } catch (error) {
      return refusalOf(error);
    }
    const grant = grantOf(payload);
    return grant === null ? invalidToken : { ok: true, grant, expiresAtMs: (payload.exp as number) * 1000 };
  }

  /** The key a token's header names; jose checks the header's alg against it and the allow-list. */
  private readonly keyOf = (header: JWTHeaderParameters): KeyObject => {
    const key = header.kid === undefined ? undefined : this.keys.get(header.kid);
    if (key === undefined || key.alg !== header.alg) throw new errors.JWSSignatureVerificationFailed('no such key');
    return key.publicKey;
  };
}

/** The grant in a verified payload, or null if it is not one we would have issued. */
function grantOf(payload: JWTPayload): TokenGrant | null {
  const { sub, scope, key_prefix: keyPrefix } = payload;
  if (typeof sub !== 'string' || sub === '' || typeof scope !== 'string') return null;
  const scopes = parseScopes(scope === '' ? [] : scope.split(' '));
  if (scopes === null) return null;
  if (keyPrefix !== undefined && (typeof keyPrefix !== 'string' || !isKeyPrefix(keyPrefix))) return null;
  return { keyId: sub, scopes, keyPrefix: keyPrefix ?? null };
}
