import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, type TestContext, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { liveUrl, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { RawConnection } from '../support/raw-connection.ts';

// Long enough that no connection of these tests is closed by a timeout instead of the cap.
const patient = { HTTP_HEADERS_TIMEOUT_MS: '60000', HTTP_REQUEST_TIMEOUT_MS: '60000', HTTP_KEEP_ALIVE_TIMEOUT_MS: '60000' };
const healthRequest = 'GET /health HTTP/1.1\r\nHost: wavehouse\r\n\r\n';

/** A connection the server accepted: it answers a request on it, and the connection stays open. */
async function acceptedConnection(t: TestContext, baseUrl: string): Promise<RawConnection> {
  const connection = new RawConnection(baseUrl);
  t.after(() => connection.destroy());
  connection.write(healthRequest);
  assert.match(await connection.response(0), /^HTTP\/1\.1 200 /);
  return connection;
}

/** Asserts that the server closes a new connection at once, before answering anything on it. */
async function assertRefused(t: TestContext, baseUrl: string): Promise<void> {
  const connection = new RawConnection(baseUrl);
  t.after(() => connection.destroy());
  connection.write(healthRequest);
  await connection.closedWithin(2_000, performance.now());
  assert.equal(connection.received, '', 'nothing was answered');
}

/** Creates a session on a connection of its own that the server closes after answering. */
function createSessionClosing(baseUrl: string): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .request(`${baseUrl}/api/v1/sessions`, { method: 'POST', agent: false }, (response) => {
        let text = '';
        response.on('data', (chunk: Buffer) => (text += chunk.toString()));
        response.on('end', () => resolve((JSON.parse(text) as { sessionId: string }).sessionId));
      })
      .on('error', reject)
      .end();
  });
}

describe('open connections per client address', () => {
  test('a client at its cap has its next connection closed unanswered; once one closes, a new one is served', async (t) => {
    const cap = 3;
    const { baseUrl } = await startApp(t, { ...patient, HTTP_MAX_CONNECTIONS_PER_IP: String(cap) });
    const open = [];
    for (let i = 0; i < cap; i++) open.push(await acceptedConnection(t, baseUrl));
    await assertRefused(t, baseUrl);
    for (const connection of open) assert.ok(connection.isOpen, 'the connections under the cap stay');

    open[0].destroy();
    await eventually(() => acceptedConnection(t, baseUrl), { timeoutMs: 5_000 });
  });

  test('an upgraded WebSocket counts against the cap until it closes', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { ...patient, HTTP_MAX_CONNECTIONS_PER_IP: '2' });
    const sessionId = await createSessionClosing(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, sessionId));
    await viewer.opened;
    // The create's connection may still be closing: eventually, only the viewer and this one are open.
    await eventually(() => acceptedConnection(t, baseUrl), { timeoutMs: 5_000 });
    await assertRefused(t, baseUrl);

    viewer.close();
    await viewer.waitForClose();
    await eventually(() => acceptedConnection(t, baseUrl), { timeoutMs: 5_000 });
  });
});
