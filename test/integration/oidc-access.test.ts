/** An identity provider's tokens as bearers of a private-mode app: roles from a nested claim map to scopes. */
import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TestContext, test } from 'node:test';
import { type JWK, SignJWT } from 'jose';
import { bearer, createKey, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { liveUrl, RecordingSocket } from '../support/clients.ts';

const issuer = 'https://keycloak.example/realms/plant';
const audience = 'wavehouse';
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });

function token(roles: string[]): Promise<string> {
  const nowS = Math.floor(Date.now() / 1000);
  return new SignJWT({ realm_access: { roles } })
    .setProtectedHeader({ alg: 'RS256', kid: 'k1' })
    .setIssuer(issuer)
    .setAudience(audience)
    .setSubject('alice')
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + 300)
    .sign(privateKey);
}

/** A private-mode app that trusts the provider at `jwksUrl`, and a session a writer key made on it. */
async function appTrusting(t: TestContext, jwksUrl: string) {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, {
    ...privateMode(),
    AUTH_JWKS_URL: jwksUrl,
    AUTH_ISSUER: issuer,
    AUTH_AUDIENCE: audience,
    AUTH_ROLES_CLAIM: 'realm_access.roles',
  });
  const writer = await createKey(databaseUrl, { name: 'writer', role: 'writer' });
  const created = await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: bearer(writer.key) });
  const { sessionId } = (await created.json()) as { sessionId: string };
  return { baseUrl, wsUrl, sessionId };
}

test("a provider's token with the reader role reads, creates nothing, and opens the live socket", async (t) => {
  const jwks = { keys: [{ ...(createPublicKey(privateKey).export({ format: 'jwk' }) as JWK), kid: 'k1', alg: 'RS256', use: 'sig' }] };
  const provider = http.createServer((_request, response) => response.writeHead(200).end(JSON.stringify(jwks)));
  await new Promise<void>((resolve) => provider.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => provider.close(() => resolve())));
  const jwksUrl = `http://127.0.0.1:${(provider.address() as AddressInfo).port}/certs`;
  const { baseUrl, wsUrl, sessionId } = await appTrusting(t, jwksUrl);

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
