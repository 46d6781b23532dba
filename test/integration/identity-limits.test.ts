/**
 * Limits per identity: REST rate limits and socket caps count per API key (its access tokens
 * with it) or identity-provider subject when a credential is accepted, per client address
 * otherwise; refused credentials count against their address, so random bearers escape nothing.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomInt } from 'node:crypto';
import { describe, type TestContext, test } from 'node:test';
import { type Answer, assertProblem, bearer, call, createKey, privateMode } from '../support/access.ts';
import { startApp, startTwoInstances } from '../support/app.ts';
import { liveUrl, RecordingSocket } from '../support/clients.ts';
import { providerToken, serveProviderKeys, trustingProvider } from '../support/identity-provider.ts';

/** A client address of its own (behind TRUST_PROXY=1), so parallel tests never share counters in Redis. */
function someClientIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

const wrongKey = () => `wh_${randomBytes(32).toString('base64url')}`;

/** A GET of the API from `ip`, with `credential` as its bearer if given. */
function getFrom(url: string, ip: string, credential?: string): Promise<Answer> {
  return call(url, 'GET', { 'x-forwarded-for': ip, ...(credential === undefined ? {} : bearer(credential)) });
}

async function statuses(count: number, request: () => Promise<Answer>): Promise<number[]> {
  const seen: number[] = [];
  for (let i = 0; i < count; i++) seen.push((await request()).status);
  return seen;
}

const repeat = (status: number, count: number) => Array<number>(count).fill(status);

/** An app behind one trusted proxy, with a reader key and a session to read. */
async function appWithSession(t: TestContext, env: Record<string, string>) {
  const running = await startApp(t, { TRUST_PROXY: '1', ...privateMode(), ...env });
  const writer = await createKey(running.databaseUrl, { name: 'writer', role: 'writer' });
  const created = await call(`${running.baseUrl}/api/v1/sessions`, 'POST', bearer(writer.key));
  return { ...running, sessionUrl: `${running.baseUrl}/api/v1/sessions/${created.body.sessionId}`, sessionId: created.body.sessionId };
}

describe('REST rate limits per identity', () => {
  test('two keys from one address have a bucket each, and anonymous callers the address', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '3' });
    const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', { 'x-forwarded-for': someClientIp() });
    const url = `${baseUrl}/api/v1/sessions/${created.body.sessionId}`;
    const [one, other] = [
      await createKey(databaseUrl, { name: 'one', role: 'reader' }),
      await createKey(databaseUrl, { name: 'other', role: 'reader' }),
    ];
    const ip = someClientIp();
    assert.deepEqual(await statuses(4, () => getFrom(url, ip, one.key)), [200, 200, 200, 429]);
    assert.deepEqual(await statuses(3, () => getFrom(url, ip, other.key)), [200, 200, 200], "one key's use throttles no other");
    assert.deepEqual(await statuses(4, () => getFrom(url, ip)), [200, 200, 200, 429], 'anonymous calls count per address');
    assert.equal((await getFrom(url, someClientIp(), one.key)).status, 429, 'a key is limited from any address');
  });

  test("a key's requestsPerMinute replaces the default, either way; over it, 429 problem+json with Retry-After", async (t) => {
    const { baseUrl, databaseUrl, sessionUrl } = await appWithSession(t, { RATE_LIMIT_PER_MINUTE: '3' });
    const strict = await createKey(databaseUrl, { name: 'strict', role: 'reader', limits: { requestsPerMinute: 2 } });
    const generous = await createKey(databaseUrl, { name: 'generous', role: 'reader', limits: { requestsPerMinute: 5 } });
    const ip = someClientIp();
    assert.deepEqual(await statuses(2, () => getFrom(sessionUrl, ip, strict.key)), [200, 200]);
    const limited = await fetch(sessionUrl, { headers: { 'x-forwarded-for': ip, ...bearer(strict.key) } });
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    const body = (await limited.json()) as { code: string; detail: string };
    assert.equal(body.code, 'rate_limited');
    assert.match(body.detail, /at most 2 requests a minute per key/);
    assert.deepEqual(await statuses(6, () => getFrom(sessionUrl, ip, generous.key)), [...repeat(200, 5), 429]);
    assert.equal((await call(`${baseUrl}/health`, 'GET', bearer(strict.key))).status, 200, 'probes are never limited');
  });

  test("a key's limit applies when RATE_LIMIT_PER_MINUTE is off; others are not limited", async (t) => {
    const { databaseUrl, sessionUrl } = await appWithSession(t, { RATE_LIMIT_PER_MINUTE: '0' });
    const strict = await createKey(databaseUrl, { name: 'strict', role: 'reader', limits: { requestsPerMinute: 1 } });
    const free = await createKey(databaseUrl, { name: 'free', role: 'reader' });
    const ip = someClientIp();
    assert.deepEqual(await statuses(2, () => getFrom(sessionUrl, ip, strict.key)), [200, 429]);
    assert.deepEqual(await statuses(5, () => getFrom(sessionUrl, ip, free.key)), repeat(200, 5));
  });

  test("an access token counts against its key's bucket", async (t) => {
    const { baseUrl, databaseUrl, sessionUrl } = await appWithSession(t, { RATE_LIMIT_PER_MINUTE: '100' });
    const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader', limits: { requestsPerMinute: 4 } });
    const ip = someClientIp();
    const tokens = await call(`${baseUrl}/api/v1/auth/token`, 'POST', { 'x-forwarded-for': ip, ...bearer(reader.key) });
    assert.equal(tokens.status, 200);
    const { accessToken } = tokens.body;
    assert.deepEqual(await statuses(2, () => getFrom(sessionUrl, someClientIp(), accessToken)), [200, 200]);
    assert.equal((await getFrom(sessionUrl, ip, reader.key)).status, 200);
    assertProblem(await getFrom(sessionUrl, someClientIp(), accessToken), 429, 'rate_limited');
    assertProblem(await getFrom(sessionUrl, ip, reader.key), 429, 'rate_limited');
  });

  test("an identity provider's subject has one bucket, whichever of its tokens it sends", async (t) => {
    const { sessionUrl } = await appWithSession(t, { RATE_LIMIT_PER_MINUTE: '2', ...trustingProvider(await serveProviderKeys(t)) });
    const ip = someClientIp();
    const [first, second, bob] = [
      await providerToken(['reader'], 'alice'),
      await providerToken(['reader', 'offline_access'], 'alice'),
      await providerToken(['reader'], 'bob'),
    ];
    assert.deepEqual([(await getFrom(sessionUrl, ip, first)).status, (await getFrom(sessionUrl, ip, second)).status], [200, 200]);
    assertProblem(await getFrom(sessionUrl, ip, first), 429, 'rate_limited');
    assert.equal((await getFrom(sessionUrl, ip, bob)).status, 200, 'another subject from the same address');
  });

  test('refused credentials count against their address: random keys, tokens and headers get 429 once it is spent', async (t) => {
    const { databaseUrl, sessionUrl } = await appWithSession(t, { RATE_LIMIT_PER_MINUTE: '4' });
    const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });
    const ip = someClientIp();
    assert.deepEqual(await statuses(4, () => getFrom(sessionUrl, ip, wrongKey())), repeat(401, 4));
    const limited = await fetch(sessionUrl, { headers: { 'x-forwarded-for': ip, ...bearer(wrongKey()) } });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    const fakeJwt = `${randomBytes(12).toString('base64url')}.${randomBytes(12).toString('base64url')}.x`;
    assertProblem(await getFrom(sessionUrl, ip, fakeJwt), 429, 'rate_limited');
    // Not looked up any more, so not told apart: a right key from that address waits too.
    assertProblem(await getFrom(sessionUrl, ip, reader.key), 429, 'rate_limited');
    assert.equal((await getFrom(sessionUrl, someClientIp(), reader.key)).status, 200, 'the key from elsewhere');

    const other = someClientIp();
    const sent = [
      () => getFrom(sessionUrl, other),
      () => getFrom(sessionUrl, other, randomBytes(24).toString('base64url')),
      () => call(sessionUrl, 'GET', { 'x-forwarded-for': other, authorization: 'Basic Zm9vOmJhcg==' }),
      () => getFrom(sessionUrl, other, wrongKey()),
    ];
    const answers = [];
    for (const send of sent) answers.push((await send()).status);
    assert.deepEqual(answers, [401, 403, 401, 401], 'no credential, an ingest token, a malformed header, a wrong key');
    for (const send of sent) assertProblem(await send(), 429, 'rate_limited');
  });

  test('in open mode, requests with an ingest token or a malformed header count against their address', async (t) => {
    const { baseUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '2' });
    const created = await call(`${baseUrl}/api/v1/sessions`, 'POST', { 'x-forwarded-for': someClientIp() });
    const url = `${baseUrl}/api/v1/sessions/${created.body.sessionId}`;
    const ip = someClientIp();
    assert.equal((await getFrom(url, ip, randomBytes(24).toString('base64url'))).status, 200);
    assert.equal((await call(url, 'GET', { 'x-forwarded-for': ip, authorization: 'Basic Zm9vOmJhcg==' })).status, 200);
    assertProblem(await getFrom(url, ip, randomBytes(24).toString('base64url')), 429, 'rate_limited');
  });

  test("with Redis, instances share a key's bucket", async (t) => {
    const { a, b, databaseUrl } = await startTwoInstances(t, { TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '100' });
    const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader', limits: { requestsPerMinute: 3 } });
    const seen: number[] = [];
    for (let i = 0; i < 2; i++) {
      seen.push((await getFrom(`${a.baseUrl}/api/v1/sessions/${crypto.randomUUID()}`, someClientIp(), reader.key)).status);
      seen.push((await getFrom(`${b.baseUrl}/api/v1/sessions/${crypto.randomUUID()}`, someClientIp(), reader.key)).status);
    }
    assert.deepEqual(seen, [404, 404, 404, 429]);
  });
});

describe('socket caps per identity', () => {
  test("a key's maxSockets caps its sockets, not its address's; anonymous sockets count per address", async (t) => {
    const { wsUrl, databaseUrl, sessionId } = await appWithSession(t, { AUTH_MODE: 'open', MAX_SOCKETS_PER_IP: '1' });
    const capped = await createKey(databaseUrl, { name: 'capped', role: 'reader', limits: { maxSockets: 2 } });
    const other = await createKey(databaseUrl, { name: 'other', role: 'reader' });
    const url = liveUrl(wsUrl, sessionId);
    const anonymous = new RecordingSocket(url);
    const [first, second] = [new RecordingSocket(url, bearer(capped.key)), new RecordingSocket(`${url}?access_token=${capped.key}`)];
    await Promise.all([anonymous.opened, first.opened, second.opened]);
    const third = new RecordingSocket(url, bearer(capped.key));
    assert.deepEqual(await third.waitForClose(), { code: 4429, reason: 'at most 2 sockets per key' });
    const others = new RecordingSocket(url, bearer(other.key));
    await others.opened;
    assert.equal((await new RecordingSocket(url).waitForClose()).code, 4429, 'a second anonymous socket from the address');

    first.close();
    await first.waitForClose();
    const again = new RecordingSocket(url, bearer(capped.key));
    await again.opened;
    await new Promise((resolve) => setTimeout(resolve, 100));
    for (const socket of [anonymous, second, others, again]) {
      assert.equal(socket.closed, null);
      socket.close();
    }
  });

  test("MAX_SOCKETS_PER_KEY caps a key without a limit of its own, and the key's access tokens with it", async (t) => {
    const { baseUrl, wsUrl, databaseUrl, sessionId } = await appWithSession(t, { MAX_SOCKETS_PER_KEY: '2' });
    const reader = await createKey(databaseUrl, { name: 'reader', role: 'reader' });
    const { accessToken } = (await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(reader.key))).body;
    const url = liveUrl(wsUrl, sessionId);
    const held = [new RecordingSocket(url, bearer(reader.key)), new RecordingSocket(`${url}?access_token=${accessToken}`)];
    await Promise.all(held.map((socket) => socket.opened));
    const over = new RecordingSocket(`${url}?access_token=${accessToken}`);
    assert.deepEqual(await over.waitForClose(), { code: 4429, reason: 'at most 2 sockets per key' });
    for (const socket of held) socket.close();
  });

  test("an identity provider's subject is capped by MAX_SOCKETS_PER_KEY", async (t) => {
    const { wsUrl, sessionId } = await appWithSession(t, { MAX_SOCKETS_PER_KEY: '1', ...trustingProvider(await serveProviderKeys(t)) });
    const url = liveUrl(wsUrl, sessionId);
    const held = new RecordingSocket(`${url}?access_token=${await providerToken(['reader'], 'carol')}`);
    await held.opened;
    const over = new RecordingSocket(`${url}?access_token=${await providerToken(['reader'], 'carol')}`);
    assert.deepEqual(await over.waitForClose(), { code: 4429, reason: 'at most 1 sockets per subject' });
    const dave = new RecordingSocket(`${url}?access_token=${await providerToken(['reader'], 'dave')}`);
    await dave.opened;
    held.close();
    dave.close();
  });
});
