/**
 * A credential that is presented is judged, in every mode: one that is malformed is refused
 * like a wrong one, never taken for no credential at all.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, RecordingSocket } from '../support/clients.ts';

const malformed = ['Basic dXNlcjpwYXNz', 'Bearer', 'Bearer a b', 'Token abc'];

async function statusOf(baseUrl: string, sessionId: string): Promise<string> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`);
  return ((await response.json()) as { status: string }).status;
}

describe('a malformed Authorization header', () => {
  for (const legacyTokenlessEnd of ['false', 'true']) {
    test(`is 401 invalid_token on end with LEGACY_TOKENLESS_END=${legacyTokenlessEnd}, and the session goes on`, async (t) => {
      const { baseUrl } = await startApp(t, { LEGACY_TOKENLESS_END: legacyTokenlessEnd });
      const session = await createSession(baseUrl);
      for (const authorization of malformed) {
        const response = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, { method: 'POST', headers: { authorization } });
        assert.equal(response.status, 401, authorization);
        assert.equal(response.headers.get('content-type'), 'application/problem+json; charset=utf-8');
        assert.equal(((await response.json()) as { code: string }).code, 'invalid_token', authorization);
      }
      assert.notEqual(await statusOf(baseUrl, session.sessionId), 'ended');

      const noHeader = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, { method: 'POST' });
      assert.equal(noHeader.status, legacyTokenlessEnd === 'true' ? 200 : 401, 'no credential at all is what the legacy setting allows');
      const withToken = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
        method: 'POST',
        headers: { authorization: `bearer ${session.ingestToken}` },
      });
      assert.equal(withToken.status, 200, 'the scheme is case-insensitive');
      assert.equal(await statusOf(baseUrl, session.sessionId), 'ended');
    });
  }

  test('refuses a socket with 4401, on the ingest path and on /ws/{id}, where it is not taken for a viewer', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { LEGACY_TOKENLESS_END: 'true' });
    const session = await createSession(baseUrl);
    const sockets = [
      ...malformed.map((authorization) => new RecordingSocket(ingestUrl(wsUrl, session.sessionId), { authorization })),
      ...malformed.map((authorization) => new RecordingSocket(`${wsUrl}/ws/${session.sessionId}`, { authorization })),
      new RecordingSocket(`${wsUrl}/ws/${session.sessionId}?token=`),
      new RecordingSocket(`${ingestUrl(wsUrl, session.sessionId)}?token=`),
      // A valid ?token= does not make up for a malformed header beside it.
      new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken), { authorization: 'Basic dXNlcjpwYXNz' }),
    ];
    for (const socket of sockets) assert.equal((await socket.waitForClose()).code, 4401);

    const viewer = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}`);
    t.after(() => viewer.close());
    await viewer.opened;
    const producer = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}`, { authorization: `Bearer ${session.ingestToken}` });
    t.after(() => producer.close());
    await producer.opened;
    producer.send({ seq: 1, t: 1, ax: 0, ay: 0, az: 0 });
    await producer.waitForAck(1);
    assert.equal(viewer.closed, null);
    assert.equal(producer.closed, null);
  });
});
