/**
 * Access, built from Config: the repositories, the authenticator and what it uses, the key and
 * token services and the audit trail, for app.ts to wire (and for the CLI's `keys create`,
 * which needs the keys alone). The audit trail, the last-use tracker and the sweeper hold
 * timers: they are Parts (lifecycle.ts), which app.ts starts and closes.
 */
import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.ts';
import { ApiKeyRepository } from '../storage/api-key-repository.ts';
import { AuditRepository } from '../storage/audit-repository.ts';
import type { Pool } from '../storage/database.ts';
import { RefreshTokenRepository } from '../storage/refresh-token-repository.ts';
import { AccessSweeper } from './access-sweeper.ts';
import { AccessTokens } from './access-tokens.ts';
import { ApiKeys } from './api-keys.ts';
import { AuditTrail } from './audit-trail.ts';
import { Authenticator } from './authenticator.ts';
import { LastUsedTracker } from './last-used.ts';
import { OidcVerifier } from './oidc-verifier.ts';
import type { AuthMode } from './policy.ts';
import type { RevocationBroadcast } from './revocation.ts';
import { loadOrCreateSigningKey, type SigningKey, signingKeyFrom, verificationKeyFrom } from './signing-keys.ts';
import { TokenService } from './token-service.ts';

export interface Access {
  readonly mode: AuthMode;
  readonly authenticator: Authenticator;
  readonly keys: ApiKeys;
  /** null: no signing key, so no access tokens (DATABASE_URL without ACCESS_TOKEN_SIGNING_KEY, open mode). */
  readonly tokens: TokenService | null;
  readonly audit: AuditTrail;
  readonly lastUsed: LastUsedTracker;
  readonly sweeper: AccessSweeper;
}

export interface AccessOptions {
  readonly config: Config;
  readonly pool: Pool;
  readonly log: Logger;
  /** Tells every instance of a revocation; null with no Redis (the cache TTL bounds it then). */
  readonly broadcast: RevocationBroadcast | null;
}

/**
 * The signing key: configured; else, with the embedded database (one instance by
 * construction), generated under its data dir; else none (loadConfig refuses that in private
 * mode: instances sharing a database would each sign with their own).
 */
async function signingKeyOf(config: Config): Promise<SigningKey | null> {
  if (config.access.signingKey !== null) return signingKeyFrom(config.access.signingKey);
  if (config.database.url === null) return loadOrCreateSigningKey(path.join(config.database.dataDir, 'access'));
  return null;
}

async function accessTokensOf(config: Config): Promise<AccessTokens | null> {
  const signingKey = await signingKeyOf(config);
  if (signingKey === null) return null;
  const previousKeys = await Promise.all(config.access.previousKeys.map((text) => verificationKeyFrom(text)));
  return new AccessTokens({ signingKey, previousKeys, ttlS: config.access.accessTokenTtlS });
}

export async function buildAccess({ config, pool, log, broadcast }: AccessOptions): Promise<Access> {
  const keyStore = new ApiKeyRepository({ pool });
  const auditStore = new AuditRepository({ pool });
  const refreshTokens = new RefreshTokenRepository({ pool });
  const audit = new AuditTrail({ store: auditStore, log: log.child({ part: 'audit' }) });
  const lastUsed = new LastUsedTracker({ store: keyStore, log: log.child({ part: 'api-key last use' }) });
  const accessTokens = await accessTokensOf(config);
  const oidc = config.access.oidc && new OidcVerifier(config.access.oidc);
  const authenticator = new Authenticator({
    keys: keyStore,
    accessTokens: accessTokens ?? undefined,
    oidc: oidc ?? undefined,
    audit,
    lastUsed,
    cacheTtlMs: config.access.cacheTtlMs,
  });
  await broadcast?.subscribe((keyId) => authenticator.revoked(keyId));
  const keys = new ApiKeys({ store: keyStore, authenticator, broadcast: broadcast ?? undefined, audit });
  const tokens =
    accessTokens &&
    new TokenService({
      accessTokens,
      store: refreshTokens,
      audit,
      refreshTtlMs: config.access.refreshTokenTtlS * 1000,
    });
  const sweeper = new AccessSweeper({
    refreshTokens,
    audit: auditStore,
    auditRetentionDays: config.access.auditRetentionDays,
    log: log.child({ part: 'access sweep' }),
  });
  return { mode: config.access.mode, authenticator, keys, tokens, audit, lastUsed, sweeper };
}
