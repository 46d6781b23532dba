import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { describe, test } from 'node:test';
import { startApp, startTwoInstances } from '../support/app.ts';
import { createSession, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

/** A client address of its own (the rightmost X-Forwarded-For entry, behind TRUST_PROXY=1), so parallel tests never share counters. */
function someClientIp(): string {
  return `10.${randomInt(256)}.${randomInt(256)}.${randomInt(1, 255)}`;
}

const get = (url: string, ip: string) => fetch(url, { headers: { 'x-forwarded-for': ip } });

describe('rate limits', () => {
  test('a client over the per-minute limit gets 429 rate_limited with Retry-After; probes are never limited', async (t) => {
    const { baseUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '5' });
    const session = await createSession(baseUrl);
    const ip = someClientIp();
    for (let i = 0; i < 5; i++) assert.equal((await get(`${baseUrl}/api/v1/sessions/${session.sessionId}`, ip)).status, 200);
    const limited = await get(`${baseUrl}/api/v1/sessions/${session.sessionId}`, ip);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('content-type'), 'application/problem+json; charset=utf-8');
    assert.ok(Number(limited.headers.get('retry-after')) > 0);
    assert.equal(limited.headers.get('access-control-allow-origin'), '*');
    assert.equal(((await limited.json()) as { code: string }).code, 'rate_limited');
    assert.equal(
      (await get(`${baseUrl}/api/v1/sessions/${session.sessionId}`, someClientIp())).status,
      200,
      'another client is not limited',
    );
    for (let i = 0; i < 10; i++) {
      for (const path of ['/health', '/ready', '/metrics']) assert.equal((await get(`${baseUrl}${path}`, ip)).status, 200, path);
    }
  });

  test('session creation has its own stricter limit', async (t) => {
    const { baseUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_CREATE_PER_MINUTE: '2' });
    const ip = someClientIp();
    const create = () => fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: { 'x-forwarded-for': ip } });
    assert.equal((await create()).status, 201);
    const second = await create();
    assert.equal(second.status, 201);
    const created = (await second.json()) as { sessionId: string };
    assert.equal((await create()).status, 429);
    assert.equal((await get(`${baseUrl}/api/v1/sessions/${created.sessionId}`, ip)).status, 200, 'reads go on');
  });

  test('with Redis, instances share the counters', async (t) => {
    const { a, b } = await startTwoInstances(t, { TRUST_PROXY: '1', RATE_LIMIT_PER_MINUTE: '6' });
    const ip = someClientIp();
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) {
      statuses.push((await get(`${a.baseUrl}/api/v1/sessions/${crypto.randomUUID()}`, ip)).status);
      statuses.push((await get(`${b.baseUrl}/api/v1/sessions/${crypto.randomUUID()}`, ip)).status);
    }
    assert.deepEqual(statuses, [404, 404, 404, 404, 404, 404, 429, 429]);
  });
});

describe('socket caps', () => {
  test('a client over its socket cap is refused with 4429; closing one makes room', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { MAX_SOCKETS_PER_IP: '2' });
    const session = await createSession(baseUrl);
    const first = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    const second = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await Promise.all([first.opened, second.opened]);
    const third = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    assert.equal((await third.waitForClose()).code, 4429);
    first.close();
    await first.waitForClose();
    const fourth = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await fourth.opened;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(fourth.closed, null);
    assert.equal(second.closed, null);
    fourth.close();
    second.close();
  });

  test('behind TRUST_PROXY the cap counts the client address the trusted proxy appended; without it, the peer address', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { TRUST_PROXY: '1', MAX_SOCKETS_PER_IP: '1' });
    const session = await createSession(baseUrl);
    const [one, other] = [someClientIp(), someClientIp()];
    // The leftmost entry is the client's own say, which the proxy passes on: not its address.
    const first = new RecordingSocket(liveUrl(wsUrl, session.sessionId), { 'x-forwarded-for': `${someClientIp()}, ${one}` });
    const elsewhere = new RecordingSocket(liveUrl(wsUrl, session.sessionId), { 'x-forwarded-for': other });
    await Promise.all([first.opened, elsewhere.opened]);
    const again = new RecordingSocket(liveUrl(wsUrl, session.sessionId), { 'x-forwarded-for': one });
    assert.equal((await again.waitForClose()).code, 4429);
    first.close();
    elsewhere.close();

    const direct = await startApp(t, { MAX_SOCKETS_PER_IP: '1' });
    const directSession = await createSession(direct.baseUrl);
    const only = new RecordingSocket(liveUrl(direct.wsUrl, directSession.sessionId), { 'x-forwarded-for': one });
    await only.opened;
    const disguised = new RecordingSocket(liveUrl(direct.wsUrl, directSession.sessionId), { 'x-forwarded-for': other });
    assert.equal((await disguised.waitForClose()).code, 4429, 'an untrusted X-Forwarded-For is ignored');
    only.close();
  });

  test('past MAX_VIEWERS, viewers of any session get 4429 naming the cap, never a producer; a viewer gone makes room', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { MAX_VIEWERS: '2' });
    const [session, other] = [await createSession(baseUrl), await createSession(baseUrl)];
    const viewers = [new RecordingSocket(liveUrl(wsUrl, session.sessionId)), new RecordingSocket(liveUrl(wsUrl, other.sessionId))];
    t.after(() => {
      for (const viewer of viewers) viewer.close();
    });
    await Promise.all(viewers.map((viewer) => viewer.opened));
    for (const id of [session.sessionId, other.sessionId]) {
      assert.deepEqual(await new RecordingSocket(liveUrl(wsUrl, id)).waitForClose(), {
        code: 4429,
        reason: 'this instance serves its most viewers (2); retry later',
      });
    }

    // The session's own producer is taken, and streams to its viewer.
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    t.after(() => producer.close());
    await producer.opened;
    producer.send({ samples: makeSamples(1, 3) });
    await producer.waitForAck(3);
    await eventually(() =>
      assert.deepEqual(
        viewers[0].samples.map((sample) => sample.seq),
        [1, 2, 3],
      ),
    );

    viewers[1].close();
    await viewers[1].waitForClose();
    // The server may see the close a moment after the client: try until one stays open.
    const next = await eventually(async () => {
      const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 1));
      t.after(() => viewer.close());
      await viewer.opened;
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(viewer.closed, null);
      return viewer;
    });
    await eventually(() =>
      assert.deepEqual(
        next.samples.map((sample) => sample.seq),
        [1, 2, 3],
      ),
    );
  });

  test('a session over its viewer cap refuses more viewers with 4429', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { MAX_VIEWERS_PER_SESSION: '1' });
    const session = await createSession(baseUrl);
    const other = await createSession(baseUrl);
    const first = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await first.opened;
    const second = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    assert.equal((await second.waitForClose()).code, 4429);
    const elsewhere = new RecordingSocket(liveUrl(wsUrl, other.sessionId));
    await elsewhere.opened;
    await new Promise((resolve) => setTimeout(resolve, 100));
    assert.equal(elsewhere.closed, null);
    first.close();
    elsewhere.close();
  });
});

test('security headers do not stop pages of other origins from using the API', async (t) => {
  const { baseUrl } = await startApp(t);
  const response = await fetch(`${baseUrl}/health`, { headers: { origin: 'https://elsewhere.example' } });
  assert.equal(response.headers.get('access-control-allow-origin'), '*');
  assert.equal(response.headers.get('cross-origin-resource-policy'), 'cross-origin');
  assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(response.headers.get('cross-origin-embedder-policy'), null);
});

test("every answer, errors and 429s included, carries helmet's whole security header set", async (t) => {
  const { baseUrl } = await startApp(t, { TRUST_PROXY: '1', RATE_LIMIT_CREATE_PER_MINUTE: '1' });
  const ip = someClientIp();
  const create = () => fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: { 'x-forwarded-for': ip } });
  const created = await create();
  const { sessionId } = (await created.json()) as { sessionId: string };
  const answers = {
    created,
    got: await get(`${baseUrl}/api/v1/sessions/${sessionId}`, ip),
    unknown: await get(`${baseUrl}/api/v1/sessions/not-a-uuid`, ip),
    invalid: await fetch(`${baseUrl}/api/v1/sessions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': someClientIp() },
      body: '{"channels":5}',
    }),
    limited: await create(),
  };
  assert.deepEqual(Object.fromEntries(Object.entries(answers).map(([name, response]) => [name, response.status])), {
    created: 201,
    got: 200,
    unknown: 404,
    invalid: 400,
    limited: 429,
  });
  for (const [name, response] of Object.entries(answers)) {
    const header = (header: string) => response.headers.get(header);
    assert.equal(
      header('content-security-policy'),
      "default-src 'self';base-uri 'self';font-src 'self' https: data:;form-action 'self';frame-ancestors 'self';img-src 'self' data:;" +
        "object-src 'none';script-src 'self';script-src-attr 'none';style-src 'self' 'unsafe-inline';upgrade-insecure-requests",
      name,
    );
    assert.equal(header('cross-origin-opener-policy'), 'same-origin', name);
    assert.equal(header('cross-origin-resource-policy'), 'cross-origin', name);
    assert.equal(header('origin-agent-cluster'), '?1', name);
    assert.equal(header('referrer-policy'), 'no-referrer', name);
    assert.equal(header('strict-transport-security'), 'max-age=31536000; includeSubDomains', name);
    assert.equal(header('x-content-type-options'), 'nosniff', name);
    assert.equal(header('x-dns-prefetch-control'), 'off', name);
    assert.equal(header('x-download-options'), 'noopen', name);
    assert.equal(header('x-frame-options'), 'SAMEORIGIN', name);
    assert.equal(header('x-permitted-cross-domain-policies'), 'none', name);
    assert.equal(header('x-xss-protection'), '0', name);
    assert.equal(header('cross-origin-embedder-policy'), null, name);
  }
});
