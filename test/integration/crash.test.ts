import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createSession, getData, makeSamples } from '../support/clients.ts';
import { seqsUpTo, storedTotals } from '../support/resilience-app.ts';
import { ResendingProducer } from '../support/resilience-producer.ts';
import { processesOnFreshDatabase } from '../support/server-process.ts';

// The per-producer limit would reject parts of the resend burst; rejected frames leave gaps a
// resending producer has to handle, which is not what this test is about.
const serverEnv = { INGEST_MAX_SAMPLES_PER_S: '0' };

async function storedSeqs(baseUrl: string, sessionId: string): Promise<number[]> {
  return (await getData(baseUrl, sessionId)).samples.map((sample) => sample.seq);
}

test('a server killed mid-stream loses nothing acked, and the resend after a restart stores every sample exactly once', {
  timeout: 90_000,
}, async (t) => {
  const processes = await processesOnFreshDatabase(t);
  const first = await processes.start(serverEnv);
  const session = await createSession(first.baseUrl);
  let current = first;
  const ingest = () => `${current.wsUrl}/api/v1/sessions/${session.sessionId}/ingest?token=${encodeURIComponent(session.ingestToken)}`;

  const producer = new ResendingProducer();
  t.after(() => producer.close());
  await producer.connect(ingest);
  // 50-sample frames about every millisecond: far more than one writer flush (20 ms) is always in flight.
  const stream = producer.stream(50, 1);
  await producer.waitForAck(5_000, 15_000);

  const stopping = stream.stop();
  first.kill('SIGKILL');
  const sentAtKill = producer.lastSentSeq;
  const ackedAtKill = producer.lastAck!;
  await stopping;
  assert.ok(sentAtKill > ackedAtKill, `samples were unacked at the kill (sent ${sentAtKill}, acked ${ackedAtKill})`);
  assert.equal((await first.waitForExit(10_000)).signal, 'SIGKILL');
  await producer.waitForClose();
  // Like a real producer it starts reconnecting at once, and keeps failing until a server is back.
  const reconnected = producer.connect(ingest, { timeoutMs: 45_000 });

  const second = await processes.start(serverEnv);
  // Before the producer is back: what the crash left is every acked sample, once, with no hole.
  const survived = await storedSeqs(second.baseUrl, session.sessionId);
  assert.ok(survived.length >= ackedAtKill, `every acked sample survived (stored ${survived.length}, acked ${ackedAtKill})`);
  assert.deepEqual(survived, seqsUpTo(survived.length));
  assert.ok(survived.length < sentAtKill, 'some sent samples were not stored at the crash, so only the resend can bring them back');
  const totalsAfterCrash = await storedTotals(processes.databaseUrl, session.sessionId);
  assert.deepEqual(totalsAfterCrash, {
    chunkSamples: survived.length,
    sessionSampleCount: survived.length,
    lastSeq: survived.length,
    overlappingChunks: 0,
  });

  t.diagnostic(`sent ${sentAtKill}, acked ${ackedAtKill}, survived ${survived.length} at the kill`);
  current = second;
  await reconnected;
  assert.ok(producer.closes.length >= 2, 'the dead server was tried before the new one accepted');
  for (let frame = 0; frame < 20; frame++) producer.sendNext(50);
  const lastSent = producer.lastSentSeq;
  await producer.waitForAck(lastSent, 15_000);

  assert.deepEqual(producer.errors, []);
  assert.deepEqual(await storedSeqs(second.baseUrl, session.sessionId), seqsUpTo(lastSent));
  assert.deepEqual(await storedTotals(processes.databaseUrl, session.sessionId), {
    chunkSamples: lastSent,
    sessionSampleCount: lastSent,
    lastSeq: lastSent,
    overlappingChunks: 0,
  });
  // The resent samples come back with the values first sent, not just the right seqs.
  const { samples } = await getData(second.baseUrl, session.sessionId, `?fromSeq=${ackedAtKill - 10}&toSeq=${ackedAtKill + 10}`);
  assert.deepEqual(samples, makeSamples(ackedAtKill - 10, 21));
});
