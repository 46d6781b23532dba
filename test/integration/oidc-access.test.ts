/** An identity provider's tokens as bearers of a private-mode app: roles from a nested claim map to scopes. */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import { bearer, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { liveUrl, RecordingSocket } from '../support/clients.ts';
import { serveProviderKeys, providerToken as token, trustingProvider } from '../support/identity-provider.ts';

/** A private-mode app that trusts the provider at `jwksUrl`, and a session a writer key made on it. */
async function appTrusting(t: TestContext, jwksUrl: string) {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, { ...privateMode(), ...trustingProvider(jwksUrl) });
  const writer = await createKey(databaseUrl, { name: 'writer', role: 'writer' });
  const created = await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: bearer(writer.key) });
  const { sessionId } = (await created.json()) as { sessionId: string };
  return { baseUrl, wsUrl, sessionId };
}

test("a provider's token with the reader role reads, creates nothing, and opens the live socket", async (t) => {
  const { baseUrl, wsUrl, sessionId } = await appTrusting(t, await serveProviderKeys(t));

  const reader = await token(['reader', 'offline_access']);
  assert.equal((await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`, { headers: bearer(reader) })).status, 200);
  const refused = await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: bearer(reader) });
  assert.equal(refused.status, 403);
  assert.equal(((await refused.json()) as { code: string }).code, 'insufficient_scope');
  // No known role: valid, but allowed nothing.
  assert.equal((await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`, { headers: bearer(await token(['viewer'])) })).status, 403);
  // A provider's token is not exchanged for ours.
  assert.equal((await fetch(`${baseUrl}/api/v1/auth/token`, { method: 'POST', headers: bearer(reader) })).status, 401);

  const viewer = new RecordingSocket(`${liveUrl(wsUrl, sessionId)}?access_token=${reader}`);
  await viewer.opened;
  viewer.socket.close();
  await viewer.waitForClose();
});

test('a provider that cannot be reached is 503 on REST and 1013 on a socket, never a refusal of the token', async (t) => {
  const closed = http.createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const jwksUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}/certs`;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { baseUrl, wsUrl, sessionId } = await appTrusting(t, jwksUrl);
  const reader = await token(['reader']);
  const answer = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`, { headers: bearer(reader) });
  assert.equal(answer.status, 503);
  assert.equal(((await answer.json()) as { code: string }).code, 'service_unavailable');
  const viewer = new RecordingSocket(`${liveUrl(wsUrl, sessionId)}?access_token=${reader}`);
  assert.equal((await viewer.waitForClose()).code, 1013);
});
