/**
 * The openSCG phone recorder and web viewer (2025), driven exactly as they behave
 * (docs/protocol.md, legacy): they must work against Wavehouse unchanged.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as pace } from 'node:timers/promises';
import { startApp } from '../support/app.ts';
import { createSession, RecordingSocket, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/**
 * Sends a request written byte for byte, so no client library can add a header the phone
 * would not send (fetch, for one, labels a string body text/plain).
 */
function rawRequest(baseUrl: string, requestLines: string[], timeoutMs = 5_000): Promise<RawAnswer> {
  const { hostname, port } = new URL(baseUrl);
  const head = `${[...requestLines, `Host: ${hostname}:${port}`, 'Connection: close'].join('\r\n')}\r\n\r\n`;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(Number(port), hostname, () => socket.write(head));
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no complete answer within ${timeoutMs} ms`)));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      const split = text.indexOf('\r\n\r\n');
      if (split < 0) return reject(new Error(`not an HTTP answer: ${JSON.stringify(text)}`));
      const [statusLine, ...headerLines] = text.slice(0, split).split('\r\n');
      const headers = Object.fromEntries(
        headerLines.map((line) => [line.slice(0, line.indexOf(':')).trim().toLowerCase(), line.slice(line.indexOf(':') + 1).trim()]),
      );
      let body = text.slice(split + 4);
      if (headers['transfer-encoding'] === 'chunked') body = dechunk(body);
      resolve({ status: Number(statusLine.split(' ')[1]), headers, body });
    });
  });
}

function dechunk(body: string): string {
  let out = '';
  for (let rest = body; ; ) {
    const lineEnd = rest.indexOf('\r\n');
    const size = parseInt(rest.slice(0, lineEnd), 16);
    if (!(size > 0)) return out;
    out += rest.slice(lineEnd + 2, lineEnd + 2 + size);
    rest = rest.slice(lineEnd + 2 + size + 2);
  }
}

/** What the phone page reads from the accelerometer: t is the browser's event.timeStamp, fractional ms. */
function phoneReadings(count: number): Array<{ t: number; ax: number; ay: number; az: number }> {
  const timeOrigin = 1843.2999999821186;
  return Array.from({ length: count }, (_, i) => ({
    t: timeOrigin + i * 10.000000000000002 + (i % 3) * 0.0999999940395355,
    ax: Math.sin(i / 7) * 0.3,
    ay: -9.81 + Math.cos(i / 11) * 0.05,
    az: i % 2 === 0 ? 0.1 : -0.2,
  }));
}

const pageOrigin = 'https://openscg-phone.example';

describe('the openSCG legacy clients', () => {
  test('record a session: health probe, bare create, phone on websocketUrl, viewer on /ws, tokenless end, data read back', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { LEGACY_TOKENLESS_END: 'true' });

    const health = await rawRequest(baseUrl, ['GET /health HTTP/1.1', `Origin: ${pageOrigin}`]);
    assert.equal(health.status, 200);
    assert.ok(health.headers['access-control-allow-origin'], 'the probe from another origin is readable');
    assert.deepEqual(JSON.parse(health.body), { status: 'ok' });

    const createRequest = ['POST /api/v1/sessions HTTP/1.1', `Origin: ${pageOrigin}`, 'Content-Length: 0'];
    assert.ok(!createRequest.some((line) => /^content-type:/i.test(line)), 'the phone sends no Content-Type');
    const created = await rawRequest(baseUrl, createRequest);
    assert.equal(created.status, 201, created.body);
    assert.ok(created.headers['access-control-allow-origin']);
    const session = JSON.parse(created.body);
    assert.equal(session.status, 'created');
    assert.equal(typeof session.createdAt, 'string');
    assert.equal(session.viewerUrl, `/view/${session.sessionId}`);
    assert.match(session.websocketUrl, new RegExp(`^/ws/${session.sessionId}\\?token=[^&]+$`));

    const viewer = new RecordingSocket(new URL(`/ws/${session.sessionId}`, wsUrl).href);
    await viewer.opened;
    const phone = new RecordingSocket(new URL(session.websocketUrl, wsUrl).href);
    await phone.opened;

    const readings = phoneReadings(500);
    for (let frame = 0; frame < 5; frame++) {
      if (frame > 0) await pace(200);
      phone.send({ type: 'samples_batch', payload: { samples: readings.slice(frame * 100, (frame + 1) * 100) } });
    }
    // The viewer sees everything while the phone is still recording.
    await eventually(() => assert.equal(viewer.samples.length, 500), { timeoutMs: 5_000 });
    assert.equal(viewer.closed, null);
    phone.close();
    await phone.waitForClose();
    assert.deepEqual(phone.ofType('error'), []);

    const ended = await rawRequest(baseUrl, [
      `POST /api/v1/sessions/${session.sessionId}/end HTTP/1.1`,
      `Origin: ${pageOrigin}`,
      'Content-Length: 0',
    ]);
    assert.equal(ended.status, 200, ended.body);
    assert.ok(ended.headers['access-control-allow-origin']);
    const endedSession = JSON.parse(ended.body);
    assert.equal(endedSession.status, 'ended');
    assert.equal(endedSession.sampleCount, 500);
    assert.equal(endedSession.lastSeq, 500);

    assert.equal((await viewer.waitForClose()).code, 1000);
    assert.deepEqual(viewer.messages.at(-1), { type: 'session_ended' });
    assert.deepEqual(
      viewer.messages.slice(0, -1).map((message) => message.type),
      viewer.messages.slice(0, -1).map(() => 'samples_batch'),
    );
    const expected: Sample[] = readings.map((reading, i) => ({ seq: i + 1, ...reading }));
    assertSameSamples(viewer.samples, expected, 'live');

    const data = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data`, { headers: { origin: pageOrigin } });
    assert.equal(data.status, 200);
    assert.ok(data.headers.get('access-control-allow-origin'));
    assert.match(data.headers.get('content-type') ?? '', /^application\/json/);
    assertSameSamples(((await data.json()) as { samples: Sample[] }).samples, expected, 'stored');
  });

  test('with the legacy setting off, ending without a token is refused with 401', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const ended = await rawRequest(baseUrl, [
      `POST /api/v1/sessions/${session.sessionId}/end HTTP/1.1`,
      `Origin: ${pageOrigin}`,
      'Content-Length: 0',
    ]);
    assert.equal(ended.status, 401);
    assert.match(ended.headers['content-type'] ?? '', /^application\/problem\+json/);
    assert.equal(JSON.parse(ended.body).code, 'invalid_token');
    assert.ok(ended.headers['access-control-allow-origin']);
    const stored = (await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json()) as { status: string };
    assert.equal(stored.status, 'created');
  });

  test('with the legacy setting on, a token that is present but wrong still cannot end a session', async (t) => {
    const { baseUrl } = await startApp(t, { LEGACY_TOKENLESS_END: 'true' });
    const session = await createSession(baseUrl);
    const ended = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
      method: 'POST',
      headers: { authorization: 'Bearer wrong' },
    });
    assert.equal(ended.status, 401);
    assert.equal(((await ended.json()) as { code: string }).code, 'invalid_token');
  });

  test('/ws/{id} with a wrong token is refused with 4401, not taken for a viewer', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const byQuery = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}?token=wrong-token`);
    const byHeader = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}`, { authorization: 'Bearer wrong-token' });
    assert.equal((await byQuery.waitForClose()).code, 4401);
    assert.equal((await byHeader.waitForClose()).code, 4401);
    assert.deepEqual(byQuery.messages, []);
    assert.deepEqual(byHeader.messages, []);
  });

  test('/ws/{id} for an unknown session or an id that is not a UUID closes with 4404', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    for (const path of [`/ws/${randomUUID()}`, '/ws/not-a-uuid', `/ws/${randomUUID()}?token=${session.ingestToken}`, '/ws/12345?token=x']) {
      const socket = new RecordingSocket(`${wsUrl}${path}`);
      assert.equal((await socket.waitForClose()).code, 4404, path);
    }
  });
});

function assertSameSamples(actual: Sample[], expected: Sample[], what: string): void {
  assert.equal(actual.length, expected.length, `${what}: sample count`);
  for (let i = 0; i < expected.length; i++) {
    assert.deepEqual(Object.keys(actual[i]).sort(), Object.keys(expected[i]).sort(), `${what}: keys of sample ${i}`);
    for (const key of Object.keys(expected[i])) {
      assert.ok(Object.is(actual[i][key], expected[i][key]), `${what}: sample ${i} ${key} is ${actual[i][key]}, sent ${expected[i][key]}`);
    }
  }
}
