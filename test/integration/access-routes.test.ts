/** Keys, tokens and the audit log over REST, against a real app in private mode. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertProblem, bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';

test('an admin creates, lists and revokes keys; a revoked key is refused at once', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, privateMode());
  const admin = await createKey(databaseUrl, { name: 'first admin', role: 'admin' });
  const keys = `${baseUrl}/api/v1/keys`;

  const created = await call(keys, 'POST', bearer(admin.key), { name: 'reader', role: 'reader' });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(created.body.scopes, ['sessions:read']);
  assert.equal(created.body.keyPrefix, null);
  assert.match(created.body.key, /^wh_/);

  const listed = await call(keys, 'GET', bearer(admin.key));
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.body.keys.map((key: { name: string }) => key.name).sort(), ['first admin', 'reader']);
  const listedText = JSON.stringify(listed.body);
  assert.ok(!listedText.includes(created.body.key) && !listedText.includes('hash'), 'the list shows no key and no hash');

  // The reader may not administer keys.
  assertProblem(await call(keys, 'GET', bearer(created.body.key)), 403, 'insufficient_scope');
  assertProblem(await call(keys, 'GET'), 401, 'missing_credential');
  assertProblem(await call(keys, 'GET', bearer(`wh_${'x'.repeat(43)}`)), 401, 'invalid_credential');

  const revoked = await call(`${keys}/${created.body.id}`, 'DELETE', bearer(admin.key));
  assert.equal(revoked.status, 200);
  assert.notEqual(revoked.body.revokedAt, null);
  assertProblem(await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(created.body.key)), 401, 'credential_revoked');
  assertProblem(await call(`${keys}/00000000-0000-4000-8000-000000000000`, 'DELETE', bearer(admin.key)), 404, 'not_found');
  assertProblem(await call(`${keys}/not-a-uuid`, 'DELETE', bearer(admin.key)), 404, 'not_found');
});

test('malformed key requests are 400', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, privateMode());
  const admin = await createKey(databaseUrl, { name: 'admin', role: 'admin' });
  const keys = `${baseUrl}/api/v1/keys`;
  for (const body of [
    {},
    { name: '' },
    { name: 'both', role: 'reader', scopes: ['admin'] },
    { name: 'neither' },
    { name: 'unknown scope', scopes: ['sessions:delete'] },
    { name: 'unknown role', role: 'owner' },
    { name: 'past', role: 'reader', expiresAt: '2000-01-01T00:00:00Z' },
    { name: 'prefix', role: 'reader', keyPrefix: 'has space' },
    { name: 'extra', role: 'reader', owner: 'me' },
  ]) {
    assertProblem(await call(keys, 'POST', bearer(admin.key), body), 400, 'invalid_request');
  }
  const prefixed = await call(keys, 'POST', bearer(admin.key), {
    name: 'prefixed',
    scopes: ['sessions:read', 'sessions:write'],
    keyPrefix: 'plant-1/',
    expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    limits: { requestsPerMinute: 100 },
  });
  assert.equal(prefixed.status, 201, JSON.stringify(prefixed.body));
  assert.equal(prefixed.body.keyPrefix, 'plant-1/');
  assert.deepEqual(prefixed.body.limits, { requestsPerMinute: 100 });
});

test('a key is exchanged for tokens; a refresh answers a new pair; a replay revokes the family; logout too', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, privateMode());
  const writer = await createKey(databaseUrl, { name: 'writer', role: 'writer' });
  const auth = `${baseUrl}/api/v1/auth`;

  const pair = await call(`${auth}/token`, 'POST', bearer(writer.key));
  assert.equal(pair.status, 200, JSON.stringify(pair.body));
  assert.equal(pair.body.expiresIn, 900);
  assert.match(pair.body.refreshToken, /^whr_/);
  // The access token is a credential as the key is.
  const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(pair.body.accessToken), {});
  assert.equal(created.status, 201, JSON.stringify(created.body));
  // Only a key is exchanged, not a token.
  assertProblem(await call(`${auth}/token`, 'POST', bearer(pair.body.accessToken)), 401, 'invalid_credential');
  assertProblem(await call(`${auth}/token`, 'POST'), 401, 'missing_credential');

  const next = await call(`${auth}/refresh`, 'POST', {}, { refreshToken: pair.body.refreshToken });
  assert.equal(next.status, 200, JSON.stringify(next.body));
  assert.notEqual(next.body.refreshToken, pair.body.refreshToken);
  // The first refresh token, used again: the family is revoked, the newer token with it.
  assertProblem(await call(`${auth}/refresh`, 'POST', {}, { refreshToken: pair.body.refreshToken }), 401, 'credential_revoked');
  assertProblem(await call(`${auth}/refresh`, 'POST', {}, { refreshToken: next.body.refreshToken }), 401, 'credential_revoked');

  const other = await call(`${auth}/token`, 'POST', bearer(writer.key));
  const loggedOut = await fetch(`${auth}/logout`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ refreshToken: other.body.refreshToken }),
  });
  assert.equal(loggedOut.status, 204);
  assertProblem(await call(`${auth}/refresh`, 'POST', {}, { refreshToken: other.body.refreshToken }), 401, 'credential_revoked');
  assertProblem(await call(`${auth}/refresh`, 'POST', {}, { refreshToken: 'whr_nope' }), 401, 'invalid_credential');
  assertProblem(await call(`${auth}/refresh`, 'POST', {}, {}), 400, 'invalid_request');
  assertProblem(await call(`${auth}/logout`, 'POST', {}, { refreshToken: 1 }), 400, 'invalid_request');
});

test('the audit log lists key and token events newest first, a page at a time, filtered by actor and action', async (t) => {
  const { app, baseUrl, databaseUrl } = await startApp(t, privateMode());
  const admin = await createKey(databaseUrl, { name: 'admin', role: 'admin' });
  const adminId = `key:${admin.id}`;
  for (const name of ['a', 'b', 'c']) await call(`${baseUrl}/api/v1/keys`, 'POST', bearer(admin.key), { name, role: 'reader' });
  const pair = await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(admin.key));
  await call(`${baseUrl}/api/v1/auth/logout`, 'POST', {}, { refreshToken: pair.body.refreshToken });
  await call(`${baseUrl}/api/v1/keys`, 'GET', bearer(`wh_${'y'.repeat(43)}`));
  await app.close();
  // Closing wrote what was queued and counted; a second app reads it.
  const { baseUrl: again } = await startApp(t, { ...privateMode(), DATABASE_URL: databaseUrl });
  const audit = `${again}/api/v1/audit`;

  const first = await call(`${audit}?limit=2&action=key.create`, 'GET', bearer(admin.key));
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.entries.length, 2);
  assert.ok(first.body.entries.every((entry: { actor: string }) => entry.actor === adminId));
  const second = await call(`${audit}?limit=2&action=key.create&cursor=${first.body.nextCursor}`, 'GET', bearer(admin.key));
  assert.equal(second.body.entries.length, 1);
  assert.equal(second.body.nextCursor, null);
  assert.ok(first.body.entries[1].at >= second.body.entries[0].at);

  const everything = await call(audit, 'GET', bearer(admin.key));
  const actions = everything.body.entries.map((entry: { action: string }) => entry.action);
  assert.ok(actions.includes('token_family.revoke'), actions.join());
  const refused = everything.body.entries.find((entry: { action: string }) => entry.action === 'credential.refuse');
  assert.equal(refused?.outcome, 'invalid_credential');
  const byActor = await call(`${audit}?actor=${encodeURIComponent(adminId)}`, 'GET', bearer(admin.key));
  assert.ok(byActor.body.entries.every((entry: { actor: string }) => entry.actor === adminId));

  assertProblem(await call(`${audit}?limit=0`, 'GET', bearer(admin.key)), 400, 'invalid_request');
  assertProblem(await call(`${audit}?limit=1001`, 'GET', bearer(admin.key)), 400, 'invalid_request');
  assertProblem(await call(`${audit}?cursor=bogus`, 'GET', bearer(admin.key)), 400, 'invalid_request');
  const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });
  assertProblem(await call(audit, 'GET', bearer(reader.key)), 403, 'insufficient_scope');
});

test('open mode: no credential works as before, and a key or token presented is judged by itself', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t);
  const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });
  const sessions = `${baseUrl}/api/v1/sessions`;
  const created = await call(sessions, 'POST', {}, {});
  assert.equal(created.status, 201);
  assert.equal((await call(`${sessions}/${created.body.sessionId}`, 'GET')).status, 200);
  assertProblem(await call(sessions, 'POST', bearer(reader.key), {}), 403, 'insufficient_scope');
  assertProblem(await call(`${sessions}/${created.body.sessionId}`, 'GET', bearer(`wh_${'q'.repeat(43)}`)), 401, 'invalid_credential');
  assert.equal((await call(`${sessions}/${created.body.sessionId}`, 'GET', bearer(reader.key))).status, 200);
  // An ingest token reads its own session's record; another's is ignored, since the id reads it anyway.
  const other = await call(sessions, 'POST', {}, {});
  for (const token of [created.body.ingestToken, other.body.ingestToken]) {
    assert.equal((await call(`${sessions}/${created.body.sessionId}`, 'GET', bearer(token))).status, 200);
  }
  // A malformed header or an ingest token is no credential: the admin routes stay shut.
  assertProblem(await call(`${baseUrl}/api/v1/keys`, 'GET', { authorization: 'Basic eDp5' }), 401, 'missing_credential');
  assertProblem(
    await call(`${baseUrl}/api/v1/keys`, 'POST', bearer(created.body.ingestToken), { name: 'x', role: 'admin' }),
    401,
    'missing_credential',
  );
  assertProblem(await call(`${baseUrl}/api/v1/audit`, 'GET', { authorization: 'Bearer' }), 401, 'missing_credential');
  // The embedded default's key is not there (DATABASE_URL is set) and none is configured: no access tokens.
  assertProblem(await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(reader.key)), 501, 'access_tokens_off');
});

test('with Redis, a key revoked on one instance is refused at once by another that had it cached', async (t) => {
  const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const env = { ...privateMode(), REDIS_URL: redisUrl, AUTH_CACHE_TTL_MS: '3600000' };
  const first = await startApp(t, env);
  const second = await startApp(t, { ...env, DATABASE_URL: first.databaseUrl });
  const admin = await createKey(first.databaseUrl, { name: 'admin', role: 'admin' });
  const reader = await createKey(first.databaseUrl, { name: 'reader', role: 'reader' });
  // The second instance caches the reader's key for an hour.
  assertProblem(await call(`${second.baseUrl}/api/v1/keys`, 'GET', bearer(reader.key)), 403, 'insufficient_scope');
  assert.equal((await call(`${first.baseUrl}/api/v1/keys/${reader.id}`, 'DELETE', bearer(admin.key))).status, 200);
  await eventually(
    async () => {
      assertProblem(await call(`${second.baseUrl}/api/v1/keys`, 'GET', bearer(reader.key)), 401, 'credential_revoked');
    },
    { timeoutMs: 2_000 },
  );
});
