import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pg from 'pg';
import { withClient } from '../../src/storage/database.ts';
import { startApp } from '../support/app.ts';
import { createSession, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

async function storedSeqs(baseUrl: string, sessionId: string): Promise<number[]> {
  return (await getData(baseUrl, sessionId)).samples.map((sample) => sample.seq);
}

describe('ingest socket', () => {
  test('acks a frame only once its samples are committed, and stores them', async (t) => {
    const { baseUrl, wsUrl, databaseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId), { authorization: `Bearer ${session.ingestToken}` });
    await producer.opened;
    producer.send({ samples: makeSamples(1, 50) });
    await producer.waitForAck(50);
    // The ack means committed: a separate connection sees every sample at once.
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query('SELECT sample_count, last_seq FROM sessions WHERE id = $1', [session.sessionId]);
    await client.end();
    assert.deepEqual(rows[0], { sample_count: '50', last_seq: '50' });
    assert.deepEqual(
      await storedSeqs(baseUrl, session.sessionId),
      makeSamples(1, 50).map((s) => s.seq),
    );
    producer.close();
  });

  test('drops duplicates and resends after a reconnect, storing each sample once', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const url = ingestUrl(wsUrl, session.sessionId, session.ingestToken);
    const first = new RecordingSocket(url);
    await first.opened;
    first.send({ samples: makeSamples(1, 30) });
    first.send({ samples: makeSamples(21, 20) });
    await first.waitForAck(40);
    first.close();
    await first.waitForClose();
    const second = await eventually(async () => {
      const socket = new RecordingSocket(url);
      await socket.opened;
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (socket.closed) throw new Error(`refused: ${socket.closed.code}`);
      return socket;
    });
    second.send({ samples: makeSamples(1, 60) });
    await second.waitForAck(60);
    const { samples } = await getData(baseUrl, session.sessionId);
    assert.deepEqual(
      samples.map((s: Sample) => s.seq),
      Array.from({ length: 60 }, (_, i) => i + 1),
    );
    second.close();
  });

  test('refuses a second producer with 4409 while the first is connected', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const url = ingestUrl(wsUrl, session.sessionId, session.ingestToken);
    const first = new RecordingSocket(url);
    await first.opened;
    first.send({ samples: makeSamples(1, 1) });
    await first.waitForAck(1);
    const second = new RecordingSocket(url);
    assert.equal((await second.waitForClose()).code, 4409);
    assert.equal(first.closed, null);
    first.close();
  });

  test('an attach failing with the database up closes the producer with 1011; the session takes one once the cause is gone', async (t) => {
    const { baseUrl, wsUrl, databaseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const url = ingestUrl(wsUrl, session.sessionId, session.ingestToken);
    // The database answers, with an error: claiming the session (its producer epoch) fails.
    const refuseClaims = `CREATE FUNCTION refuse_claim() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN RAISE EXCEPTION 'claim refused'; END $$;
      CREATE TRIGGER refuse_claim BEFORE UPDATE OF producer_epoch ON sessions FOR EACH ROW EXECUTE FUNCTION refuse_claim()`;
    await withClient(databaseUrl, (client) => client.query(refuseClaims));
    const refused = new RecordingSocket(url);
    assert.deepEqual(await refused.waitForClose(), { code: 1011, reason: 'internal error; reconnect' });

    // Nothing of the failed attach is left holding the session.
    await withClient(databaseUrl, (client) => client.query('DROP TRIGGER refuse_claim ON sessions'));
    const producer = new RecordingSocket(url);
    t.after(() => producer.close());
    await producer.opened;
    producer.send({ samples: makeSamples(1, 5) });
    await producer.waitForAck(5);
    assert.deepEqual(await storedSeqs(baseUrl, session.sessionId), [1, 2, 3, 4, 5]);
  });

  test('viewers receive what the producer sends', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    await viewer.opened;
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    const sent = makeSamples(1, 100);
    producer.send({ samples: sent.slice(0, 50) });
    producer.send({ type: 'samples_batch', payload: { samples: sent.slice(50) } });
    await eventually(() => assert.deepEqual(viewer.samples, sent));
    producer.close();
    viewer.close();
  });
});
