/** Keys and records for the access tests. */
import { generateKeyPairSync, type JsonWebKey } from 'node:crypto';
import pg from 'pg';
import { ApiKeys, type KeyRequest } from '../../src/access/api-keys.ts';
import { ApiKeyRepository } from '../../src/storage/api-key-repository.ts';

/** A fresh P-256 private key as a JWK, as an operator would configure one. */
export function ecPrivateJwk(): JsonWebKey {
  return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
}

/** A key made the way the CLI makes the first one: through the library, straight into the database. */
export async function createKey(databaseUrl: string, request: KeyRequest): Promise<{ id: string; key: string }> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const keys = new ApiKeys({
      store: new ApiKeyRepository({ pool }),
      authenticator: { revoked: () => undefined },
      audit: { record: () => undefined },
    });
    const created = await keys.create(request, { actor: 'cli', ip: null, requestId: null });
    if (!created.ok) throw new Error(created.problem);
    return { id: created.view.id, key: created.key };
  } finally {
    await pool.end();
  }
}

/** The settings of an app in private mode, with a signing key of its own. */
export function privateMode(signingKey: JsonWebKey = ecPrivateJwk()): Record<string, string> {
  return { AUTH_MODE: 'private', ACCESS_TOKEN_SIGNING_KEY: JSON.stringify(signingKey) };
}

export function bearer(credential: string): Record<string, string> {
  return { authorization: `Bearer ${credential}` };
}
