/** AUTH_MODE=private: every REST route and socket needs a key or token with its scope; an ingest token still ingests and ends. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { AccessTokens } from '../../src/access/access-tokens.ts';
import { signingKeyFrom } from '../../src/access/signing-keys.ts';
import { assertProblem, bearer, call, createKey, ecPrivateJwk, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

async function closeOf(url: string, headers: Record<string, string> = {}): Promise<{ code: number; reason: string }> {
  const socket = new RecordingSocket(url, headers);
  return socket.waitForClose();
}

async function privateApp(t: Parameters<typeof startApp>[0]) {
  const signingKey = ecPrivateJwk();
  const running = await startApp(t, privateMode(signingKey));
  const keyOf = async (role: string, keyPrefix?: string) =>
    (await createKey(running.databaseUrl, { name: role, role, keyPrefix: keyPrefix ?? null })).key;
  const expiredToken = async () => {
    const hourAgo = new AccessTokens({ signingKey: await signingKeyFrom(JSON.stringify(signingKey)), clock: () => Date.now() - 3_600_000 });
    return (await hourAgo.issue({ keyId: '00000000-0000-4000-8000-000000000000', scopes: ['sessions:read'], keyPrefix: null })).accessToken;
  };
  return { ...running, reader: await keyOf('reader'), writer: await keyOf('writer'), admin: await keyOf('admin'), keyOf, expiredToken };
}

test('REST: no credential, an id alone, a garbage or expired token are 401; a reader reads; an ingest token, its own record', async (t) => {
  const { baseUrl, reader, writer, expiredToken } = await privateApp(t);
  const sessions = `${baseUrl}/api/v1/sessions`;
  assertProblem(await call(sessions, 'POST', {}, {}), 401, 'missing_credential');
  assertProblem(await call(sessions, 'POST', bearer(reader), {}), 403, 'insufficient_scope');
  const created = await call(sessions, 'POST', bearer(writer), {});
  assert.equal(created.status, 201, JSON.stringify(created.body));
  const session = `${sessions}/${created.body.sessionId}`;

  assertProblem(await call(session), 401, 'missing_credential');
  assertProblem(await call(`${session}/data`), 401, 'missing_credential');
  assertProblem(await call(session, 'GET', { authorization: 'Basic eDp5' }), 401, 'invalid_credential');
  assertProblem(await call(session, 'GET', bearer('a.b.c')), 401, 'invalid_credential');
  assertProblem(await call(session, 'GET', bearer(await expiredToken())), 401, 'credential_expired');
  assertProblem(await call(session, 'GET', bearer(`wh_${'z'.repeat(43)}`)), 401, 'invalid_credential');
  assert.equal((await call(session, 'GET', bearer(reader))).status, 200);
  assert.equal((await call(`${session}/data`, 'GET', bearer(reader))).status, 200);
  // The session's own ingest token reads its record (a producer resumes from it), nothing more.
  const own = await call(session, 'GET', bearer(created.body.ingestToken));
  assert.equal(own.status, 200, JSON.stringify(own.body));
  assert.equal(own.body.sessionId, created.body.sessionId);
  assertProblem(await call(`${session}/data`, 'GET', bearer(created.body.ingestToken)), 403, 'insufficient_scope');
  const other = await call(sessions, 'POST', bearer(writer), {});
  assertProblem(await call(`${sessions}/${other.body.sessionId}`, 'GET', bearer(created.body.ingestToken)), 403, 'insufficient_scope');
  assertProblem(await call(session, 'GET', bearer('not-the-ingest-token')), 403, 'insufficient_scope');
  // /health is public; unknown sessions are 404 once the credential passes.
  assert.equal((await call(`${baseUrl}/health`)).status, 200);
  assertProblem(await call(`${sessions}/00000000-0000-4000-8000-000000000000`, 'GET', bearer(reader)), 404, 'not_found');
});

test('a prefixed key creates no keyless session and reaches none', async (t) => {
  const { baseUrl, writer, keyOf } = await privateApp(t);
  const prefixed = await keyOf('writer', 'plant-1/');
  const sessions = `${baseUrl}/api/v1/sessions`;
  assertProblem(await call(sessions, 'POST', bearer(prefixed), {}), 403, 'outside_key_prefix');
  const created = await call(sessions, 'POST', bearer(writer), {});
  assertProblem(await call(`${sessions}/${created.body.sessionId}`, 'GET', bearer(prefixed)), 403, 'outside_key_prefix');
});

test('an ingest token ingests and ends its own session, not another; a writer key ingests; audit rows appear', async (t) => {
  const { app, baseUrl, wsUrl, databaseUrl, writer, admin } = await privateApp(t);
  const sessions = `${baseUrl}/api/v1/sessions`;
  const own = (await call(sessions, 'POST', bearer(writer), {})).body;
  const other = (await call(sessions, 'POST', bearer(writer), {})).body;

  const producer = new RecordingSocket(ingestUrl(wsUrl, own.sessionId, own.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(0, 5) });
  await producer.waitForAck(4);
  producer.socket.close();
  await producer.waitForClose();

  // Its token does not open the other session's ingest, nor end it.
  assert.equal((await closeOf(ingestUrl(wsUrl, other.sessionId, own.ingestToken))).code, 4401);
  assertProblem(await call(`${sessions}/${other.sessionId}/end`, 'POST', bearer(own.ingestToken)), 401, 'invalid_token');
  const ended = await call(`${sessions}/${own.sessionId}/end`, 'POST', bearer(own.ingestToken));
  assert.equal(ended.status, 200, JSON.stringify(ended.body));
  assert.equal(ended.body.status, 'ended');

  // A writer key is a producer's credential too, in the header.
  const byKey = new RecordingSocket(ingestUrl(wsUrl, other.sessionId), bearer(writer));
  await byKey.opened;
  byKey.send({ samples: makeSamples(0, 3) });
  await byKey.waitForAck(2);
  byKey.socket.close();
  await byKey.waitForClose();
  assert.equal((await call(`${sessions}/${other.sessionId}/end`, 'POST', bearer(writer))).status, 200);

  await app.close();
  const { baseUrl: again } = await startApp(t, { ...privateMode(), DATABASE_URL: databaseUrl });
  const audit = await call(`${again}/api/v1/audit`, 'GET', bearer(admin));
  const rows = audit.body.entries.map((entry: { action: string; target: string; actor: string }) => `${entry.action} ${entry.actor}`);
  assert.ok(rows.includes(`session.create key:${writerIdOf(audit, 'session.create')}`), rows.join('\n'));
  assert.ok(rows.includes(`session.end ingest:${own.sessionId}`), rows.join('\n'));
  assert.equal(rows.filter((row: string) => row.startsWith('session.end')).length, 2, rows.join('\n'));
});

// biome-ignore lint/suspicious/noExplicitAny: the audit page as the server sent it
function writerIdOf(audit: any, action: string): string {
  return audit.body.entries.find((entry: { action: string }) => entry.action === action).actor.slice('key:'.length);
}

test('sockets: no credential, garbage and expired tokens are 4401; a reader cannot ingest (4403); ?access_token= opens live', async (t) => {
  const { baseUrl, wsUrl, reader, writer, expiredToken } = await privateApp(t);
  const created = (await call(`${baseUrl}/api/v1/sessions`, 'POST', bearer(writer), {})).body;
  const id = created.sessionId;
  const expired = await expiredToken();

  for (const url of [liveUrl(wsUrl, id), ingestUrl(wsUrl, id), `${wsUrl}/ws/${id}`]) {
    const closed = await closeOf(url);
    assert.equal(closed.code, 4401, url);
    assert.match(closed.reason, /^missing_credential/);
  }
  for (const url of [liveUrl(wsUrl, id), ingestUrl(wsUrl, id), `${wsUrl}/ws/${id}`]) {
    assert.equal((await closeOf(url, bearer('a.b.c'))).code, 4401, url);
    const stale = await closeOf(url, bearer(expired));
    assert.equal(stale.code, 4401, url);
    assert.match(stale.reason, /^credential_expired/);
  }
  // An id alone reads nothing, even one that does not exist: the credential is checked first.
  assert.equal((await closeOf(liveUrl(wsUrl, '00000000-0000-4000-8000-000000000000'))).code, 4401);
  const readerIngest = await closeOf(ingestUrl(wsUrl, id), bearer(reader));
  assert.equal(readerIngest.code, 4403);
  assert.match(readerIngest.reason, /^insufficient_scope/);
  // The ingest token opens no live socket in private mode.
  assert.equal((await closeOf(`${liveUrl(wsUrl, id)}?access_token=${created.ingestToken}`)).code, 4403);

  const pair = (await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(reader))).body;
  const viewer = new RecordingSocket(`${liveUrl(wsUrl, id)}?access_token=${encodeURIComponent(pair.accessToken)}`);
  await viewer.opened;
  const producer = new RecordingSocket(ingestUrl(wsUrl, id, created.ingestToken));
  await producer.opened;
  producer.send({ samples: makeSamples(0, 2) });
  await eventually(() => assert.ok(viewer.messages.length > 0, 'the viewer got the samples'));
  // A header and a query credential that disagree are refused.
  assert.equal((await closeOf(`${liveUrl(wsUrl, id)}?access_token=${pair.accessToken}`, bearer(reader))).code, 4401);
  viewer.socket.close();
  producer.socket.close();
});

test('/health stays public; /ready and /metrics need METRICS_TOKEN when one is set', async (t) => {
  const metricsToken = 'metrics-token-0123456789abcdef';
  const { baseUrl } = await startApp(t, { ...privateMode(), METRICS_TOKEN: metricsToken });
  assert.equal((await fetch(`${baseUrl}/health`)).status, 200);
  for (const path of ['/ready', '/metrics']) {
    assertProblem(await call(`${baseUrl}${path}`), 401, 'invalid_token');
    assert.equal((await fetch(`${baseUrl}${path}`, { headers: bearer(metricsToken) })).status, 200, path);
  }
  // Without a METRICS_TOKEN, both are public, as in open mode.
  const { baseUrl: unguarded } = await startApp(t, privateMode());
  for (const path of ['/ready', '/metrics']) assert.equal((await fetch(`${unguarded}${path}`)).status, 200, path);
});
