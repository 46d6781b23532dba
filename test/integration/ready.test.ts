import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

async function readiness(baseUrl: string) {
  const response = await fetch(`${baseUrl}/ready`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; database: boolean; writeQueueBytes: number } };
}

test('/ready is false while the write queue is above its bound, though the database answers, and true again once it drains', async (t) => {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, { WRITE_QUEUE_MAX_BYTES: String(1024 * 1024), INGEST_MAX_SAMPLES_PER_S: '0' });
  const session = await createSession(baseUrl);
  assert.equal((await readiness(baseUrl)).status, 200);

  // Commits stall behind a lock that another connection holds, while SELECT 1 still answers.
  const blocker = new pg.Client({ connectionString: databaseUrl });
  blocker.on('error', () => undefined);
  await blocker.connect();
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE sample_chunks IN ACCESS EXCLUSIVE MODE');

  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  // 40 bytes a sample in the queue: 30,000 samples is over the 1 MiB bound.
  for (let from = 1; from <= 30_000; from += 1_000) producer.send({ samples: makeSamples(from, 1_000) });
  await eventually(async () => {
    const { status, body } = await readiness(baseUrl);
    assert.equal(status, 503);
    assert.equal(body.database, true);
    assert.equal(body.ready, false);
    assert.ok(body.writeQueueBytes >= 1024 * 1024, `queue at ${body.writeQueueBytes} bytes`);
  });
  assert.equal(producer.lastAck, null, 'nothing is acked while nothing commits');

  await blocker.query('ROLLBACK');
  await blocker.end();
  await producer.waitForAck(30_000, 15_000);
  await eventually(async () => assert.equal((await readiness(baseUrl)).status, 200));
  producer.close();
});
