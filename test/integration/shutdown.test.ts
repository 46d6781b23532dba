import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import { createSession, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket, refusedUpgrade } from '../support/clients.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { seqsUpTo, startAppOn, storedTotals } from '../support/resilience-app.ts';
import { ResendingProducer } from '../support/resilience-producer.ts';
import { type ServerProcess, startServerProcess } from '../support/server-process.ts';
import { startTcpProxy, type TcpProxy } from '../support/tcp-proxy.ts';

const graceMs = 8_000;

/** A fresh database, optionally behind a proxy, torn down after every server process on it. */
async function databaseFor(t: TestContext, { proxied = false } = {}) {
  const database = await freshDatabase();
  const proxy: TcpProxy | null = proxied ? await startTcpProxy() : null;
  const servers: ServerProcess[] = [];
  t.after(async () => {
    proxy?.restore();
    for (const server of servers) await server.stop();
    await proxy?.close();
    await database.drop();
  });
  const start = async () => {
    const server = await startServerProcess(t, {
      env: {
        DATABASE_URL: proxy ? proxy.urlFor(database.url) : database.url,
        SHUTDOWN_GRACE_MS: String(graceMs),
        INGEST_MAX_SAMPLES_PER_S: '0',
      },
    });
    servers.push(server);
    return server;
  };
  return { url: database.url, proxy, start };
}

describe('shutdown on SIGTERM', () => {
  test('commits and acks what it accepted, closes producers and viewers with 1012, and exits 0 within the grace', {
    timeout: 60_000,
  }, async (t) => {
    const database = await databaseFor(t);
    const server = await database.start();
    const session = await createSession(server.baseUrl);
    const viewer = new RecordingSocket(liveUrl(server.wsUrl, session.sessionId));
    t.after(() => viewer.close());
    await viewer.opened;
    const producer = new ResendingProducer();
    t.after(() => producer.close());
    await producer.connect(() => ingestUrl(server.wsUrl, session.sessionId, session.ingestToken));
    // Fast and never waiting for acks, so the write queue always holds something at the signal.
    producer.stream(50, 1);
    await producer.waitForAck(3_000);

    const signalledAtMs = Date.now();
    server.kill('SIGTERM');
    const exit = await server.waitForExit(graceMs + 2_000);
    const exitedWithinMs = Date.now() - signalledAtMs;
    t.diagnostic(`exited ${exitedWithinMs} ms after SIGTERM; final ack ${producer.lastAck}, sent ${producer.lastSentSeq}`);
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(exitedWithinMs < graceMs, `exited ${exitedWithinMs} ms after SIGTERM`);

    const closed = await producer.waitForClose();
    assert.equal(closed.code, 1012);
    assert.equal((await viewer.waitForClose()).code, 1012);
    const finalAck = producer.lastAck!;
    assert.ok(
      producer.acks.some((ack) => ack.atMs >= signalledAtMs),
      'final acks arrived after the signal',
    );
    assert.ok(
      producer.acks.every((ack) => ack.atMs <= closed.atMs),
      'every ack came before the close',
    );
    assert.ok(producer.lastSentSeq > finalAck, 'the producer sent more than was accepted before the drain stopped reading');

    // Every accepted sample was committed and acked: the final ack is the stored last seq.
    assert.deepEqual(await storedTotals(database.url, session.sessionId), {
      chunkSamples: finalAck,
      sessionSampleCount: finalAck,
      lastSeq: finalAck,
      overlappingChunks: 0,
    });
    const after = await startAppOn(t, database.url);
    assert.deepEqual((await getData(after.baseUrl, session.sessionId)).samples, makeSamples(1, finalAck));
    assert.deepEqual(
      viewer.samples.map((sample) => sample.seq),
      seqsUpTo(finalAck),
      'viewers saw exactly what was stored',
    );
  });

  test('answers new requests with 503 while the drain waits for the database, then finishes it', { timeout: 60_000 }, async (t) => {
    const database = await databaseFor(t, { proxied: true });
    const proxy = database.proxy!;
    const server = await database.start();
    const session = await createSession(server.baseUrl);
    const viewer = new RecordingSocket(liveUrl(server.wsUrl, session.sessionId));
    t.after(() => viewer.close());
    await viewer.opened;
    const producer = new ResendingProducer();
    t.after(() => producer.close());
    await producer.connect(() => ingestUrl(server.wsUrl, session.sessionId, session.ingestToken));
    const stream = producer.stream(10, 2);
    await producer.waitForAck(500);

    // With the database gone the drain cannot finish, which holds it open for as long as the test needs.
    proxy.cut();
    await eventually(() => assert.ok(producer.lastSentSeq >= (producer.lastAck ?? 0) + 200));
    await stream.stop();
    const lastSent = producer.lastSentSeq;
    // Viewers get what the server accepted: once this one has it all, nothing is left in flight.
    await eventually(() => assert.equal(viewer.samples.at(-1)?.seq, lastSent));
    const signalledAtMs = Date.now();
    server.kill('SIGTERM');
    await eventually(
      async () => {
        const response = await fetch(`${server.baseUrl}/api/v1/sessions/${session.sessionId}`);
        assert.equal(response.status, 503);
        assert.match(response.headers.get('content-type') ?? '', /^application\/problem\+json/);
        assert.equal(((await response.json()) as { status: number }).status, 503);
      },
      { timeoutMs: 3_000 },
    );
    const refused = await refusedUpgrade(liveUrl(server.wsUrl, session.sessionId));
    assert.equal(refused.status, 503, 'a new socket is refused while draining too');
    assert.equal(refused.body.code, 'service_unavailable');
    assert.equal(producer.isOpen, true, 'the producer is kept until its samples are committed');

    proxy.restore();
    const closed = await producer.waitForClose(graceMs);
    assert.equal(closed.code, 1012);
    assert.deepEqual(await server.waitForExit(graceMs), { code: 0, signal: null });
    assert.ok(Date.now() - signalledAtMs < graceMs, 'exited within the grace');
    assert.equal((await viewer.waitForClose()).code, 1012);

    assert.equal(producer.lastAck, lastSent, 'everything sent before the signal was committed and acked');
    assert.deepEqual(await storedTotals(database.url, session.sessionId), {
      chunkSamples: lastSent,
      sessionSampleCount: lastSent,
      lastSeq: lastSent,
      overlappingChunks: 0,
    });
  });
});
