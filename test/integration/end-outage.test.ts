/**
 * Ending a session while its samples cannot be committed: the end waits a bounded
 * time (SESSION_END_TIMEOUT_MS), answers 503 with Retry-After, and holds up nothing queued
 * behind it; once the database is back, a retry ends the session with every accepted sample.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { createSession, endSession, getData, ingestUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { startAppBehindProxy, storedTotals } from '../support/resilience-app.ts';

test('an end in an outage answers 503 + Retry-After within its bound, an attach behind it is answered, a retry after it ends the session', {
  timeout: 60_000,
}, async (t) => {
  const endTimeoutMs = 1_500;
  const { baseUrl, wsUrl, proxy, directDatabaseUrl } = await startAppBehindProxy(t, { SESSION_END_TIMEOUT_MS: String(endTimeoutMs) });
  const { sessionId, ingestToken } = await createSession(baseUrl);
  const producer = new RecordingSocket(ingestUrl(wsUrl, sessionId, ingestToken));
  t.after(() => producer.close());
  await producer.opened;
  producer.send({ samples: makeSamples(1, 100) });
  await producer.waitForAck(100, 10_000);

  // The session's row locked on a connection of the test's own: the writer's next commit waits
  // on it, so what the producer sends now is accepted and stays uncommitted while the database
  // still answers the end's lookup.
  const blocker = new pg.Client({ connectionString: directDatabaseUrl });
  // Dropping the database at teardown (an earlier hook) ends this connection if a failed test left it open.
  blocker.on('error', () => undefined);
  await blocker.connect();
  t.after(() => blocker.end().catch(() => undefined));
  await blocker.query('BEGIN');
  await blocker.query('SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE', [sessionId]);
  producer.send({ samples: makeSamples(101, 100) });
  await eventually(async () => {
    const { rows } = await blocker.query<{ waiting: number }>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity
        WHERE datname = current_database() AND application_name = 'wavehouse-writer' AND wait_event_type = 'Lock'`,
    );
    assert.equal(rows[0].waiting, 1, 'the commit of 101-200 waits on the lock');
  });

  const endStartedAt = Date.now();
  const ending = fetch(`${baseUrl}/api/v1/sessions/${sessionId}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ingestToken}` },
    signal: AbortSignal.timeout(endTimeoutMs + 5_000),
  });
  // The end has begun once the session refuses frames; a resent sample is no new data either way.
  await eventually(
    () => {
      producer.send({ samples: makeSamples(1, 1) });
      assert.ok(
        producer.ofType('error').some((error) => error.code === 'session_ended'),
        'the end has begun',
      );
    },
    { intervalMs: 100 },
  );
  // A second producer, through the socket's own session lookup, queues behind the end.
  const second = new RecordingSocket(ingestUrl(wsUrl, sessionId, ingestToken));
  t.after(() => second.close());
  await second.opened;

  // The outage: the writer's blocked transaction loses its connection and never commits.
  proxy.cut();
  await blocker.query('ROLLBACK');
  await blocker.end();

  const answer = await ending;
  const endTookMs = Date.now() - endStartedAt;
  assert.equal(answer.status, 503);
  assert.equal(answer.headers.get('retry-after'), '5');
  assert.match(answer.headers.get('content-type') ?? '', /^application\/problem\+json/);
  const problem = (await answer.json()) as Record<string, unknown>;
  assert.equal(problem.code, 'service_unavailable');
  assert.match(String(problem.detail), new RegExp(`not all committed within ${endTimeoutMs} ms`));
  assert.ok(endTookMs >= endTimeoutMs - 20 && endTookMs < endTimeoutMs + 2_000, `answered after ${endTookMs} ms`);
  assert.deepEqual(await second.waitForClose(2_000), { code: 4409, reason: 'a producer is already connected' });
  assert.ok(Date.now() - endStartedAt < endTimeoutMs + 2_500, 'the attach was answered once the end gave up');
  assert.equal(producer.lastAck, 100, 'nothing acked that was not committed');

  proxy.restore();
  // What a client told Retry-After does: ask again until the end is done.
  const ended = await eventually(
    async () => {
      const retried = await endSession(baseUrl, sessionId, ingestToken);
      assert.equal(retried.status, 200, JSON.stringify(retried.body));
      return retried.body;
    },
    { timeoutMs: 20_000, intervalMs: 250 },
  );
  assert.equal(ended.status, 'ended');
  assert.equal(ended.sampleCount, 200);
  assert.equal(ended.lastSeq, 200);
  await producer.waitForAck(200);
  assert.equal((await producer.waitForClose()).code, 1000, 'the producer is closed as the session ends');
  assert.deepEqual((await getData(baseUrl, sessionId)).samples, makeSamples(1, 200));
  assert.deepEqual(await storedTotals(directDatabaseUrl, sessionId), {
    chunkSamples: 200,
    sessionSampleCount: 200,
    lastSeq: 200,
    overlappingChunks: 0,
  });
});
