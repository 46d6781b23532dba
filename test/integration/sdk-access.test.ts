/**
 * The SDK in private mode, against the real server: tokens exchanged from an API key,
 * refreshed before they expire and renewed when the server calls one expired, one refresh
 * at a time; a viewer and a producer that keep streaming across expiries with no hole and no
 * duplicate; a refused credential that fails loudly instead of retrying forever.
 *
 * Access tokens live 2 s here (production's minimum is a minute, which loadConfig keeps), and
 * the server accepts one for 5 s more (its clock tolerance): a test that outlives 7 s has
 * seen its first token die.
 */
import assert from 'node:assert/strict';
import { type TestContext, test } from 'node:test';
import WebSocket from 'ws';
import { AccessTokens } from '../../src/access/access-tokens.ts';
import { signingKeyFrom } from '../../src/access/signing-keys.ts';
import { accessCredential, ingestTokenCredential } from '../../src/sdk/access-credentials.ts';
import { Producer } from '../../src/sdk/producer.ts';
import { createSession, endSession, getSession, readData, WavehouseHttpError } from '../../src/sdk/rest.ts';
import type { AccessCredential, Sample, SampleInput } from '../../src/sdk/types.ts';
import { Viewer, ViewerError, type ViewerOptions } from '../../src/sdk/viewer.ts';
import type { WebSocketConstructor } from '../../src/sdk/websocket.ts';
import { bearer, call, createKey, ecPrivateJwk, privateMode } from '../support/access.ts';
import { startApp } from '../support/app.ts';
import { eventually } from '../support/eventually.ts';
import { startUpgradeRecorder } from '../support/upgrade-recorder.ts';

const quickBackoff = { initialDelayMs: 20, maxDelayMs: 250 };
const tokenLifetimeS = 2;
/** The first token is refused from tokenLifetimeS + the server's 5 s of clock tolerance on. */
const firstTokenDeadMs = (tokenLifetimeS + 5) * 1000;

/** A browser's WebSocket: a URL and nothing else, so the token goes in the query. */
const UrlOnlyWebSocket = WebSocket as unknown as WebSocketConstructor;

async function privateSdkApp(t: TestContext, refreshTokenTtlS?: number) {
  const signingKey = ecPrivateJwk();
  const running = await startApp(t, privateMode(signingKey), {}, (config) => {
    config.access.accessTokenTtlS = tokenLifetimeS;
    if (refreshTokenTtlS !== undefined) config.access.refreshTokenTtlS = refreshTokenTtlS;
  });
  const keyOf = (role: string) => createKey(running.databaseUrl, { name: role, role, keyPrefix: null });
  const expiredToken = async () => {
    const hourAgo = new AccessTokens({ signingKey: await signingKeyFrom(JSON.stringify(signingKey)), clock: () => Date.now() - 3_600_000 });
    return (await hourAgo.issue({ keyId: '00000000-0000-4000-8000-000000000000', scopes: ['sessions:read'], keyPrefix: null })).accessToken;
  };
  return { ...running, writer: await keyOf('writer'), admin: await keyOf('admin'), expiredToken };
}

/** The global fetch, keeping `path status` of every call: how many exchanges and refreshes there were. */
function recordingFetch(): { fetch: typeof fetch; calls: string[]; count(path: string): number } {
  const calls: string[] = [];
  const recording: typeof fetch = async (input, init) => {
    const response = await fetch(input, init);
    calls.push(`${new URL(String(input)).pathname} ${response.status}`);
    return response;
  };
  return { fetch: recording, calls, count: (path) => calls.filter((entry) => entry.startsWith(`/api/v1${path} `)).length };
}

function keyCredential(t: TestContext, baseUrl: string, apiKey: string, fetcher: typeof fetch = fetch): AccessCredential {
  const credential = accessCredential({ baseUrl, apiKey, fetch: fetcher });
  t.after(() => credential.close());
  return credential;
}

function viewerFor(t: TestContext, options: ViewerOptions): { viewer: Viewer; samples: Sample[]; done: Promise<void> } {
  const viewer = new Viewer({ backoff: quickBackoff, ...options });
  t.after(() => viewer.close());
  const samples: Sample[] = [];
  const done = (async () => {
    for await (const sample of viewer) samples.push(sample);
  })();
  done.catch(() => undefined);
  return { viewer, samples, done };
}

function inputs(from: number, count: number): SampleInput[] {
  return Array.from({ length: count }, (_, i) => ({ t: 1_700_000_000_000 + from + i, ax: from + i, ay: -(from + i), az: 0.5 }));
}

function assertSeqs(samples: Sample[], from: number, to: number, label: string): void {
  const seqs = samples.map((sample) => sample.seq);
  assert.deepEqual(
    seqs,
    Array.from({ length: to - from + 1 }, (_, i) => from + i),
    label,
  );
  for (const sample of samples) assert.equal(sample.ax, sample.seq, `${label}: sample ${sample.seq}`);
}

function bearerOf(upgrade: { url: string; headers: { authorization?: string } }): string {
  return upgrade.headers.authorization?.replace(/^Bearer /, '') ?? new URL(upgrade.url, 'http://x').searchParams.get('access_token') ?? '';
}

test('a viewer (header and query) and a producer stream across token expiries: fresh tokens, no hole, no duplicate', async (t) => {
  const { baseUrl, writer } = await privateSdkApp(t);
  const proxy = await startUpgradeRecorder(t, baseUrl);
  const credential = keyCredential(t, proxy.url, writer.key);
  const { sessionId, ingestToken } = await createSession(proxy.url, undefined, { credential });
  const producer = new Producer({ baseUrl: proxy.url, sessionId, token: ingestToken, credential, backoff: quickBackoff });
  t.after(() => producer.close());
  const inNode = viewerFor(t, { baseUrl: proxy.url, sessionId, fromSeq: 1, credential });
  const inBrowser = viewerFor(t, { baseUrl: proxy.url, sessionId, fromSeq: 1, credential, WebSocket: UrlOnlyWebSocket });
  const refusals: number[] = [];
  for (const { viewer } of [inNode, inBrowser]) {
    viewer.on('disconnected', ({ code }) => {
      if (code !== 4000) refusals.push(code);
    });
  }

  const startedAt = Date.now();
  let pushed = 0;
  while (Date.now() - startedAt < firstTokenDeadMs + 1_500) {
    producer.push(inputs(pushed + 1, 25));
    pushed += 25;
    await producer.flush({ timeoutMs: 5_000 });
    await eventually(() => assert.equal(inNode.samples.length + inBrowser.samples.length, 2 * pushed), { timeoutMs: 5_000 });
    inNode.viewer.dropConnection();
    inBrowser.viewer.dropConnection();
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  // A second producer, as a restarted process would make, reads the session with a token the first one never saw.
  producer.close();
  const again = new Producer({ baseUrl: proxy.url, sessionId, token: ingestToken, credential, backoff: quickBackoff });
  t.after(() => again.close());
  again.push(inputs(pushed + 1, 25));
  pushed += 25;
  await again.end({ timeoutMs: 5_000 });
  await Promise.all([inNode.done, inBrowser.done]);

  assertSeqs(inNode.samples, 1, pushed, 'the viewer sending a header');
  assertSeqs(inBrowser.samples, 1, pushed, 'the viewer sending ?access_token=');
  const stored: Sample[] = [];
  for await (const sample of readData(proxy.url, sessionId, { credential })) stored.push(sample);
  assertSeqs(stored, 1, pushed, 'GET /data');
  assert.deepEqual(refusals, [], 'no socket was refused');

  const live = proxy.upgrades.filter((upgrade) => upgrade.url.includes('/live'));
  const headerTokens = new Set(live.filter((upgrade) => upgrade.headers.authorization).map(bearerOf));
  const queryTokens = new Set(live.filter((upgrade) => upgrade.url.includes('access_token=')).map(bearerOf));
  assert.ok(headerTokens.size >= 4 && queryTokens.size >= 4, `tokens seen: ${headerTokens.size} in headers, ${queryTokens.size} in URLs`);
  for (const upgrade of proxy.upgrades.filter((each) => each.url.includes('/ingest'))) {
    assert.equal(upgrade.headers.authorization, `Bearer ${ingestToken}`, 'a producer presents its ingest token alone');
  }
});

test('concurrent calls share one exchange and one refresh; the family stays whole', async (t) => {
  const { baseUrl, writer } = await privateSdkApp(t);
  const recording = recordingFetch();
  const credential = keyCredential(t, baseUrl, writer.key, recording.fetch);
  const tokens = await Promise.all(Array.from({ length: 20 }, () => credential.token()));
  assert.equal(new Set(tokens).size, 1);
  assert.equal(recording.count('/auth/token'), 1, recording.calls.join('\n'));

  const renewed = await Promise.all(Array.from({ length: 20 }, () => credential.renew(tokens[0])));
  assert.equal(new Set(renewed).size, 1);
  assert.notEqual(renewed[0], tokens[0]);
  assert.deepEqual(recording.calls, ['/api/v1/auth/token 200', '/api/v1/auth/refresh 200']);
  // Had two refreshes used the same refresh token, its family would be revoked and this one refused.
  await credential.renew(renewed[0]!);
  assert.deepEqual(recording.calls.slice(2), ['/api/v1/auth/refresh 200']);
  const { sessionId } = await createSession(baseUrl, undefined, { credential, fetch: recording.fetch });
  assert.equal((await getSession(baseUrl, sessionId, { credential })).sessionId, sessionId);
});

test('ahead of expiry the credential refreshes by itself; a refused refresh token falls back to the key', async (t) => {
  const { baseUrl, writer } = await privateSdkApp(t, 0);
  const recording = recordingFetch();
  const credential = keyCredential(t, baseUrl, writer.key, recording.fetch);
  const first = await credential.token();
  // Refreshed at half of its 2 s; the refresh token, given no life at all, is refused.
  await eventually(() => assert.equal(recording.count('/auth/token'), 2), { timeoutMs: 3_000 });
  assert.deepEqual(recording.calls, ['/api/v1/auth/token 200', '/api/v1/auth/refresh 401', '/api/v1/auth/token 200']);
  assert.notEqual(await credential.token(), first);
  credential.close();
  const callsAtClose = recording.calls.length;
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  assert.equal(recording.calls.length, callsAtClose, 'no refresh after close()');
});

test('a revoked key stops the viewer, the producer and the REST calls with credential_revoked, without retrying', async (t) => {
  const { baseUrl, writer, admin } = await privateSdkApp(t);
  const recording = recordingFetch();
  const credential = keyCredential(t, baseUrl, writer.key, recording.fetch);
  const { sessionId, ingestToken } = await createSession(baseUrl, undefined, { credential });
  const { viewer, done } = viewerFor(t, { baseUrl, sessionId, fromSeq: 0, credential, fetch: recording.fetch });
  await new Promise((resolve) => viewer.once('connected', resolve));

  assert.equal((await call(`${baseUrl}/api/v1/keys/${writer.id}`, 'DELETE', bearer(admin.key))).status, 200);
  viewer.dropConnection();
  // A socket refusal: its close is 4401, and its error code the refusal's, as a REST call's.
  await assert.rejects(done, { name: 'ViewerError', code: 'credential_revoked' });
  await assert.rejects(getSession(baseUrl, sessionId, { credential }), { name: 'WavehouseHttpError', code: 'credential_revoked' });
  const producer = new Producer({ baseUrl, sessionId, token: ingestToken, credential, backoff: quickBackoff });
  t.after(() => producer.close());
  const failed = await new Promise<Error>((resolve) => producer.once('error', resolve));
  assert.equal((failed as { code?: string }).code, 'credential_revoked');
  await assert.rejects(producer.flush(), { code: 'credential_revoked' });
  const exchanges = recording.count('/auth/token');
  await new Promise((resolve) => setTimeout(resolve, 500));
  assert.equal(recording.count('/auth/token'), exchanges, 'nothing retries a revoked key');
});

test('a getAccessToken callback: called at every connect, and again when the server calls its token expired', async (t) => {
  const { baseUrl, writer, expiredToken } = await privateSdkApp(t);
  const exchange = async () => (await call(`${baseUrl}/api/v1/auth/token`, 'POST', bearer(writer.key))).body.accessToken as string;
  const given: string[] = [await expiredToken()];
  let calls = 0;
  const credential = accessCredential({ getAccessToken: async () => given[Math.min(calls++, given.length - 1)] });
  given.push(await exchange());
  const { sessionId, ingestToken } = await createSession(baseUrl, undefined, { credential: accessCredential({ accessToken: given[1] }) });
  const closes: string[] = [];
  const { viewer, samples, done } = viewerFor(t, { baseUrl, sessionId, fromSeq: 1, credential, WebSocket: UrlOnlyWebSocket });
  viewer.on('disconnected', ({ code, reason, retryInMs }) => closes.push(`${code} ${reason} ${retryInMs}`));

  const producer = new Producer({ baseUrl, sessionId, token: ingestToken, credential, backoff: quickBackoff });
  t.after(() => producer.close());
  producer.push(inputs(1, 10));
  await producer.flush({ timeoutMs: 5_000 });
  await endSession(baseUrl, sessionId, credential);
  await done;
  assertSeqs(samples, 1, 10, 'the viewer');
  assert.deepEqual(closes, ['4401 credential_expired 0'], 'refused once, renewed at once');
  assert.equal(calls, 4, "the expired token, its renewal, the producer's read, the end");
});

test('a token that is refused as expired and cannot be renewed is fatal, not retried', async (t) => {
  const { baseUrl, writer, expiredToken } = await privateSdkApp(t);
  const { sessionId } = await createSession(baseUrl, undefined, { credential: keyCredential(t, baseUrl, writer.key) });
  const credential = accessCredential({ accessToken: await expiredToken() });
  await assert.rejects(getSession(baseUrl, sessionId, { credential }), (error) => {
    return error instanceof WavehouseHttpError && error.status === 401 && error.code === 'credential_expired';
  });
  const closes: string[] = [];
  const { viewer, done } = viewerFor(t, { baseUrl, sessionId, fromSeq: 0, credential });
  viewer.on('disconnected', ({ code, willReconnect }) => closes.push(`${code} ${willReconnect}`));
  await assert.rejects(done, (error) => error instanceof ViewerError && error.code === 'credential_expired');
  // Refused, renewed (a fixed token has no newer one), fatal.
  assert.deepEqual(closes, ['4401 true', '4401 false']);
});

test("a viewer refused for a session outside its key's prefix fails with outside_key_prefix, from the 4403", async (t) => {
  const { baseUrl, writer, databaseUrl } = await privateSdkApp(t);
  const { sessionId } = await createSession(baseUrl, undefined, { credential: keyCredential(t, baseUrl, writer.key) });
  const prefixed = await createKey(databaseUrl, { name: 'plant', role: 'reader', keyPrefix: 'plant-1/' });
  const closes: number[] = [];
  const { viewer, done } = viewerFor(t, { baseUrl, sessionId, fromSeq: 0, credential: keyCredential(t, baseUrl, prefixed.key) });
  viewer.on('disconnected', ({ code }) => closes.push(code));
  await assert.rejects(done, { name: 'ViewerError', code: 'outside_key_prefix' });
  assert.deepEqual(closes, [4403]);
});

test('a producer given only its ingest token reads its session with it, streams and ends; that token reads no data', async (t) => {
  const { baseUrl, writer } = await privateSdkApp(t);
  const recording = recordingFetch();
  const { sessionId, ingestToken } = await createSession(baseUrl, undefined, { credential: keyCredential(t, baseUrl, writer.key) });
  const producer = new Producer({ baseUrl, sessionId, token: ingestToken, backoff: quickBackoff, fetch: recording.fetch });
  t.after(() => producer.close());
  producer.push(inputs(1, 10));
  const ended = await producer.end({ timeoutMs: 5_000 });
  assert.equal(ended.sampleCount, 10);
  assert.deepEqual(recording.calls, [`/api/v1/sessions/${sessionId} 200`, `/api/v1/sessions/${sessionId}/end 200`]);
  await assert.rejects(readData(baseUrl, sessionId, { credential: ingestTokenCredential(ingestToken) }).next(), {
    name: 'WavehouseHttpError',
    code: 'insufficient_scope',
  });
});
