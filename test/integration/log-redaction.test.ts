/**
 * Credentials never reach a log line, however the client spells them: a query parameter is
 * judged by its decoded name (as the socket routes read it), and credential headers are cut.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, RecordingSocket } from '../support/clients.ts';
import { logLines } from '../support/log-lines.ts';

/** Spellings of a credential parameter that URLSearchParams reads as token or access_token, or that differ only in case. */
const spellings = ['%74oken', 'tok%65n', 'TOKEN', 'Token', 'access_token', 'ACCESS%5FTOKEN', '%61ccess_token', '?token'];

test('a credential in the query is redacted under any spelling, on REST request lines and upgrade lines', async (t) => {
  const { lines, log } = logLines();
  const { baseUrl, wsUrl } = await startApp(t, {}, { log });
  const session = await createSession(baseUrl);

  // The encoded name authenticates: it is a real credential, and must not be logged.
  const producer = new RecordingSocket(`${wsUrl}/api/v1/sessions/${session.sessionId}/ingest?%74oken=${session.ingestToken}`);
  t.after(() => producer.close());
  await producer.opened;
  producer.send({ seq: 1, t: 1, ax: 0, ay: 0, az: 0 });
  await producer.waitForAck(1);

  const secrets: string[] = [];
  for (const name of spellings) {
    const secret = `secret-${randomUUID()}`;
    secrets.push(secret);
    await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}?x=1&${name}=${secret}`);
    const socket = new RecordingSocket(`${wsUrl}/ws/${session.sessionId}?${name}=${secret}&y=2`);
    await socket.opened.catch(() => undefined);
    socket.close();
    await socket.waitForClose();
  }

  const requestLines = lines.filter((line) => line.includes('"incoming request"'));
  for (const name of spellings) {
    assert.ok(
      requestLines.some((line) => line.includes(`/api/v1/sessions/${session.sessionId}?x=1&${name}=[redacted]`)),
      `REST, ${name}`,
    );
    assert.ok(
      requestLines.some((line) => line.includes(`/ws/${session.sessionId}?${name}=[redacted]&y=2`)),
      `upgrade, ${name}`,
    );
  }
  for (const line of lines) {
    assert.ok(!line.includes(session.ingestToken), `the token in a log line: ${line}`);
    for (const secret of secrets) assert.ok(!line.includes(secret), `a credential in a log line: ${line}`);
  }
});

test('the headers that carry credentials are redacted wherever a line holds them', () => {
  const { lines, log } = logLines();
  const headers = { authorization: 'Bearer s1', cookie: 'session=s2', 'proxy-authorization': 'Basic s3', 'user-agent': 'kept' };
  log.info({ headers, req: { method: 'GET', url: '/', headers } }, 'with headers');
  const entry = JSON.parse(lines[0]) as { headers: Record<string, string> };
  assert.deepEqual(entry.headers, {
    authorization: '[redacted]',
    cookie: '[redacted]',
    'proxy-authorization': '[redacted]',
    'user-agent': 'kept',
  });
  for (const secret of ['s1', 's2', 's3']) assert.ok(!lines[0].includes(secret), lines[0]);
});
