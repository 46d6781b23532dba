import assert from 'node:assert/strict';
import { test } from 'node:test';
import { startApp } from '../support/app.ts';
import { createSession, endSession, ingestUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { logLines } from '../support/log-lines.ts';

test('log lines are JSON, carry the request id, and never hold an ingest token', async (t) => {
  const { lines, log } = logLines('trace');
  const { baseUrl } = await startApp(t, {}, { log });

  const session = await createSession(baseUrl);
  const wsUrl = baseUrl.replace(/^http/, 'ws');
  const byQuery = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await byQuery.opened;
  byQuery.send({ samples: makeSamples(1, 10) });
  await byQuery.waitForAck(10);
  byQuery.close();
  await byQuery.waitForClose();
  const wrong = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, `not-the-token-${session.ingestToken.slice(0, 8)}`));
  await wrong.waitForClose();
  await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`, {
    headers: { 'x-request-id': 'trace-me-42', authorization: `Bearer ${session.ingestToken}` },
  });
  assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);

  assert.ok(lines.length > 5);
  for (const line of lines) {
    const entry = JSON.parse(line) as Record<string, unknown>;
    assert.equal(typeof entry.level, 'number');
    assert.ok(!line.includes(session.ingestToken), `token in a log line: ${line}`);
    assert.ok(!line.includes(session.ingestToken.slice(0, 8)), `part of a token in a log line: ${line}`);
  }
  const traced = lines.filter((line) => line.includes('trace-me-42'));
  assert.ok(traced.length >= 2, 'a given x-request-id is on the request and response lines');
  const ingestLines = lines.filter((line) => line.includes('/ingest'));
  assert.ok(ingestLines.some((line) => line.includes('token=[redacted]')));
});
