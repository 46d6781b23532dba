import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createSession, databaseErrorCount, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { seqsUpTo, startAppBehindProxy, storedTotals } from '../support/resilience-app.ts';
import { ResendingProducer } from '../support/resilience-producer.ts';

async function readiness(baseUrl: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${baseUrl}/ready`);
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function within<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * PostgreSQL's ParameterStatus of the producer-lock connection's name, which the server sends
 * as that connection starts: the first producer to attach opens it, after the upgrade's
 * session lookup has passed.
 */
const lockConnectionStarts = Buffer.from('application_name\0wavehouse-locks\0');

/**
 * PostgreSQL's CopyOutResponse to a binary COPY of four columns ('H', length 15, format 1,
 * four columns each format 1): the start of the answer when a live viewer reads its history.
 */
const historyCopyStarts = Buffer.from([0x48, 0, 0, 0, 15, 1, 0, 4, 0, 1, 0, 1, 0, 1, 0, 1]);

/** PostgreSQL's CommandComplete message for COMMIT: 'C', int32 length 11, "COMMIT\0". */
const commitComplete = Buffer.concat([Buffer.from('C'), Buffer.from([0, 0, 0, 11]), Buffer.from('COMMIT\0')]);

describe('database outage', () => {
  test('live viewers go on, acks pause, and after the database is back every sample is stored once', { timeout: 60_000 }, async (t) => {
    const { baseUrl, wsUrl, proxy, directDatabaseUrl } = await startAppBehindProxy(t);
    const session = await createSession(baseUrl);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId));
    t.after(() => viewer.close());
    await viewer.opened;
    const producer = new ResendingProducer();
    t.after(() => producer.close());
    await producer.connect(() => ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    // About 1 kHz: ten samples every 10 ms, never waiting for acks.
    const stream = producer.stream(10, 10);
    await producer.waitForAck(300);

    proxy.cut();
    const cutAtMs = Date.now();
    const sentAtCut = producer.lastSentSeq;
    const viewerMaxSeq = () => viewer.samples.at(-1)?.seq ?? 0;

    await eventually(
      async () => {
        const { status, body } = await readiness(baseUrl);
        assert.equal(status, 503);
        assert.equal(body.ready, false);
        assert.equal(body.database, false);
      },
      { timeoutMs: 3_000 },
    );

    // The outage itself: three seconds of a producer streaming into a database that is gone.
    await sleep(Math.max(0, cutAtMs + 3_000 - Date.now()));
    const sentBeforeRestore = producer.lastSentSeq;
    assert.ok(
      sentBeforeRestore - sentAtCut >= 1_500,
      `the producer kept streaming (${sentBeforeRestore - sentAtCut} samples during the cut)`,
    );
    await eventually(() => assert.ok(viewerMaxSeq() >= sentBeforeRestore, `viewer at ${viewerMaxSeq()}, sent ${sentBeforeRestore}`), {
      timeoutMs: 2_000,
    });
    const seenDuringCut = viewer.samples.map((sample) => sample.seq).filter((seq) => seq > sentAtCut && seq <= sentBeforeRestore);
    assert.deepEqual(
      seenDuringCut,
      seqsUpTo(sentBeforeRestore).slice(sentAtCut),
      'the viewer got every sample sent during the outage, live',
    );

    const committed = await storedTotals(directDatabaseUrl, session.sessionId);
    const acksDuringCut = producer.acks.filter((ack) => ack.atMs >= cutAtMs).map((ack) => ack.seq);
    assert.ok(
      committed.lastSeq !== null && committed.lastSeq <= sentAtCut,
      `nothing sent after the cut was committed (last_seq ${committed.lastSeq}, sent at cut ${sentAtCut})`,
    );
    assert.ok(
      acksDuringCut.every((seq) => seq <= committed.lastSeq!),
      `no ack beyond what is committed: ${acksDuringCut.join(',')} vs ${committed.lastSeq}`,
    );
    assert.ok(producer.lastAck! <= committed.lastSeq!);
    assert.equal(producer.isOpen, true, 'the producer socket stays open through the outage');
    assert.deepEqual(producer.closes, []);
    // Each failed commit attempt is counted, and the circuit breaker spaces them out (about
    // one probe a second once open) rather than retrying as fast as the backoff allows.
    const failedCommits = await databaseErrorCount(baseUrl, 'commit');
    assert.ok(failedCommits >= 2 && failedCommits <= 12, `${failedCommits} failed commit attempts in 3 s`);

    proxy.restore();
    await producer.waitForAck(sentBeforeRestore, 15_000);
    await stream.stop();
    const lastSent = producer.lastSentSeq;
    await producer.waitForAck(lastSent, 10_000);

    assert.equal(producer.isOpen, true);
    assert.deepEqual(producer.errors, []);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, lastSent));
    assert.deepEqual(await storedTotals(directDatabaseUrl, session.sessionId), {
      chunkSamples: lastSent,
      sessionSampleCount: lastSent,
      lastSeq: lastSent,
      overlappingChunks: 0,
    });
    await eventually(() =>
      assert.deepEqual(
        viewer.samples.map((sample) => sample.seq),
        seqsUpTo(lastSent),
      ),
    );
    await eventually(async () => assert.equal((await readiness(baseUrl)).status, 200), { timeoutMs: 5_000 });
  });

  test('a commit whose answer is lost with the connection is neither lost nor stored twice', { timeout: 25_000 }, async (t) => {
    const { baseUrl, wsUrl, proxy, directDatabaseUrl } = await startAppBehindProxy(t, { LOG_LEVEL: 'warn' });
    const session = await createSession(baseUrl);
    const producer = new ResendingProducer();
    t.after(() => producer.close());
    await producer.connect(() => ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    const stream = producer.stream(10, 5);
    await producer.waitForAck(100);

    // The server commits, and the connection dies before its "COMMIT" reaches the app: the
    // writer cannot know whether the flush landed.
    const fired = proxy.cutWhenServerSends(commitComplete);
    await within(fired, 5_000, 'no COMMIT passed the proxy');
    const landed = await storedTotals(directDatabaseUrl, session.sessionId);
    assert.ok(landed.lastSeq! > producer.lastAck!, 'the flush whose answer was lost is stored, and not acked');
    proxy.restore();

    await producer.waitForAck(landed.lastSeq!, 15_000);
    await stream.stop();
    const lastSent = producer.lastSentSeq;
    await producer.waitForAck(lastSent, 15_000);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, lastSent));
    assert.deepEqual(await storedTotals(directDatabaseUrl, session.sessionId), {
      chunkSamples: lastSent,
      sessionSampleCount: lastSent,
      lastSeq: lastSent,
      overlappingChunks: 0,
    });
  });

  test('a producer whose attach finds the database gone is closed with 1013 and counted, and attaches once it is back', {
    timeout: 25_000,
  }, async (t) => {
    const { baseUrl, wsUrl, proxy } = await startAppBehindProxy(t, { LOG_LEVEL: 'error' });
    const session = await createSession(baseUrl);
    const fired = proxy.cutWhenServerSends(lockConnectionStarts);
    const refused = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await refused.opened;
    await within(fired, 5_000, 'the producer lock connection did not start');
    assert.deepEqual(await refused.waitForClose(), { code: 1013, reason: 'database unavailable; retry' });
    assert.equal(await databaseErrorCount(baseUrl, 'producer_attach'), 1);

    proxy.restore();
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    t.after(() => producer.close());
    await producer.opened;
    producer.send({ samples: makeSamples(1, 10) });
    await producer.waitForAck(10, 10_000);
    assert.equal(producer.closed, null);
  });

  test('a live viewer whose history read finds the database gone is closed with 1013 and counted', { timeout: 25_000 }, async (t) => {
    const { baseUrl, wsUrl, proxy } = await startAppBehindProxy(t, { LOG_LEVEL: 'error' });
    const session = await createSession(baseUrl);
    const fired = proxy.cutWhenServerSends(historyCopyStarts);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 0));
    t.after(() => viewer.close());
    await viewer.opened;
    await within(fired, 5_000, 'the viewer did not read its history');
    assert.deepEqual(await viewer.waitForClose(), { code: 1013, reason: 'database unavailable; reconnect with fromSeq' });
    assert.equal(await databaseErrorCount(baseUrl, 'viewer_history'), 1);
    proxy.restore();
  });
});
