/** Keys and records for the access tests. */
import assert from 'node:assert/strict';
import type { JsonWebKey } from 'node:crypto';
import pg from 'pg';
import { ApiKeys, type KeyRequest } from '../../src/access/api-keys.ts';
import { generatePrivateKey } from '../../src/access/signing-keys.ts';
import { ApiKeyRepository } from '../../src/storage/api-key-repository.ts';

/** A fresh P-256 private key as a JWK, as an operator would configure one. */
export function ecPrivateJwk(): JsonWebKey {
  return generatePrivateKey({ ec: 'P-256' }).key.export({ format: 'jwk' });
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

/** An answer of the API, its body parsed (null when empty). */
export interface Answer {
  status: number;
  // biome-ignore lint/suspicious/noExplicitAny: a body as the server sent it, each test reads the fields it expects
  body: any;
}

/** One call to the API, with a JSON body when one is given. */
export async function call(url: string, method = 'GET', headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const response = await fetch(url, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? null : JSON.parse(text) };
}

export function assertProblem(answer: Answer, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code);
}
