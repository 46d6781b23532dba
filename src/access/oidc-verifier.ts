/**
 * Tokens of an identity provider (OIDC): JWTs signed with the provider's keys, published as a
 * JWKS at a URL. jose fetches the set, caches it, and fetches it again when a token names a
 * key it does not hold (the provider rotated), at most once per cooldown, so tokens with
 * made-up key ids cannot turn into a flood of fetches. Roles in a claim (default `roles`)
 * map to scopes through the role table.
 */
import { createRemoteJWKSet, errors, type FlattenedJWSInput, type JWTHeaderParameters, type JWTPayload, jwtVerify } from 'jose';
import { invalidToken, refusalOf, type TokenRefusal } from './access-tokens.ts';
import { type Scope, scopesOfRoles } from './scopes.ts';
import { type AsymmetricAlgorithm, asymmetricAlgorithms, isAsymmetricAlgorithm } from './signing-keys.ts';

export interface OidcOptions {
  readonly jwksUrl: string;
  /** `iss` of the provider's tokens, exactly. */
  readonly issuer: string;
  /** The `aud` a token must name: this service's client id or API identifier. */
  readonly audience: string;
  /** The claim holding the roles, read by claimAt (`realm_access.roles`, `https://example.com/roles`). Default `roles`. */
  readonly rolesClaim?: string;
  /** Signature algorithms accepted; asymmetric only. Default RS256, PS256, ES256, EdDSA and their stronger kin. */
  readonly algorithms?: readonly AsymmetricAlgorithm[];
  /** Clock skew tolerated on exp and nbf, in seconds, against the provider. Default 30. */
  readonly clockToleranceS?: number;
  /** The least time between two fetches of the JWKS for an unknown kid. Default 30 s. */
  readonly jwksCooldownMs?: number;
  /** How long a fetched JWKS is used before it is fetched again. Default 10 minutes. */
  readonly jwksMaxAgeMs?: number;
  /** How long a fetch of the JWKS may take. Default 5 s. */
  readonly jwksTimeoutMs?: number;
  readonly clock?: () => number;
}

export interface OidcIdentity {
  readonly subject: string;
  readonly scopes: readonly Scope[];
}

export type VerifiedOidcToken = { readonly ok: true; readonly identity: OidcIdentity; readonly expiresAtMs: number } | TokenRefusal;

/**
 * The provider's keys could not be fetched (down, slow, answering garbage): no fault of the
 * client's, so its token is not refused; the request fails as the service being unavailable.
 */
export class IdentityProviderUnavailableError extends Error {
  constructor(cause: unknown) {
    super(`the identity provider's keys could not be fetched: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'IdentityProviderUnavailableError';
  }
}

/** What the key set answers about the token itself, rather than about fetching the set. */
function isAboutTheToken(error: unknown): boolean {
  return (
    error instanceof errors.JWKSNoMatchingKey ||
    error instanceof errors.JWKSMultipleMatchingKeys ||
    error instanceof errors.JOSENotSupported
  );
}

/**
 * The value a claim name reaches in a token's claims, or undefined. Providers use dots both
 * ways: inside a name (Auth0's namespaced `https://example.com/roles`, required of custom
 * claims there) and as a path into an object (Keycloak's `realm_access.roles`). So at each
 * level the longest run of the dot-separated parts that is a claim there is taken, then the
 * rest is read inside it: `https://example.com/app.roles` is `roles` inside the claim
 * `https://example.com/app`. Only own properties count, never what an object inherits.
 */
export function claimAt(claims: object, name: string): unknown {
  const parts = name.split('.');
  let value: unknown = claims;
  let from = 0;
  while (from < parts.length) {
    if (typeof value !== 'object' || value === null) return undefined;
    let to = parts.length;
    while (to > from && !Object.hasOwn(value, parts.slice(from, to).join('.'))) to -= 1;
    if (to === from) return undefined;
    value = (value as Record<string, unknown>)[parts.slice(from, to).join('.')];
    from = to;
  }
  return value;
}

export class OidcVerifier {
  readonly issuer: string;
  private readonly audience: string;
  private readonly rolesClaim: string;
  private readonly algorithms: AsymmetricAlgorithm[];
  private readonly clockToleranceS: number;
  private readonly clock: () => number;
  private readonly jwks: ReturnType<typeof createRemoteJWKSet>;

  constructor(options: OidcOptions) {
    this.issuer = options.issuer;
    this.audience = options.audience;
    this.rolesClaim = options.rolesClaim ?? 'roles';
    this.algorithms = [...(options.algorithms ?? asymmetricAlgorithms)];
    const symmetric = this.algorithms.filter((alg) => !isAsymmetricAlgorithm(alg));
    if (symmetric.length > 0 || this.algorithms.length === 0) {
      throw new Error(`identity-provider tokens are verified with asymmetric algorithms only, not ${symmetric.join(', ') || 'none'}`);
    }
    this.clockToleranceS = options.clockToleranceS ?? 30;
    this.clock = options.clock ?? Date.now;
    this.jwks = createRemoteJWKSet(new URL(options.jwksUrl), {
      cooldownDuration: options.jwksCooldownMs ?? 30_000,
      cacheMaxAge: options.jwksMaxAgeMs ?? 600_000,
      timeoutDuration: options.jwksTimeoutMs ?? 5_000,
    });
  }

  /**
   * The identity a provider's token asserts, or why it is refused. Rejects only with
   * IdentityProviderUnavailableError.
   */
  async verify(token: string): Promise<VerifiedOidcToken> {
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, this.keyOf, {
        issuer: this.issuer,
        audience: this.audience,
        algorithms: this.algorithms,
        requiredClaims: ['sub', 'exp'],
        clockTolerance: this.clockToleranceS,
        currentDate: new Date(this.clock()),
      }));
    } catch (error) {
      if (error instanceof IdentityProviderUnavailableError) throw error;
      return refusalOf(error);
    }
    if (typeof payload.sub !== 'string' || payload.sub === '') return invalidToken;
    const identity = { subject: payload.sub, scopes: scopesOfRoles(this.rolesOf(payload)) };
    return { ok: true, identity, expiresAtMs: (payload.exp as number) * 1000 };
  }

  private readonly keyOf = async (header: JWTHeaderParameters, token: FlattenedJWSInput) => {
    try {
      return await this.jwks(header, token);
    } catch (error) {
      throw isAboutTheToken(error) ? error : new IdentityProviderUnavailableError(error);
    }
  };

  /** The roles in the claim: an array of strings, or one string of space-separated roles. */
  private rolesOf(payload: JWTPayload): string[] {
    const value = claimAt(payload, this.rolesClaim);
    if (typeof value === 'string') return value.split(' ');
    return Array.isArray(value) ? value.filter((role): role is string => typeof role === 'string') : [];
  }
}
