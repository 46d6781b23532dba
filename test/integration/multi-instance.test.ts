import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTwoInstances } from '../support/app.ts';
import { createSession, endSession, getData, ingestUrl, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

/** Streams contiguous seqs in 50-sample frames every 10 ms until stopped. */
function stream(producer: RecordingSocket, fromSeq = 1) {
  let next = fromSeq;
  const timer = setInterval(() => {
    producer.send({ samples: makeSamples(next, 50) });
    next += 50;
  }, 10);
  return {
    stop: () => clearInterval(timer),
    get lastSent() {
      return next - 1;
    },
  };
}

function assertContiguous(seqs: number[], from: number, to: number) {
  assert.equal(seqs.length, to - from + 1, `expected ${from}..${to}, got ${seqs.length} samples from ${seqs[0]} to ${seqs.at(-1)}`);
  for (const [i, seq] of seqs.entries()) assert.equal(seq, from + i);
}

describe('several instances behind one database and Redis', () => {
  test('viewers on another instance than the producer get every sample, joining history to live', async (t) => {
    const { a, b } = await startTwoInstances(t);
    const session = await createSession(a.baseUrl);
    const producer = new RecordingSocket(ingestUrl(a.wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    const streaming = stream(producer);
    const fromNow = new RecordingSocket(liveUrl(b.wsUrl, session.sessionId));
    await eventually(() => assert.ok(producer.lastAck !== null && producer.lastAck > 500));
    const fromStart = new RecordingSocket(liveUrl(b.wsUrl, session.sessionId, 1));
    await eventually(() => assert.ok((producer.lastAck ?? 0) > 2_000), { timeoutMs: 10_000 });
    streaming.stop();
    await producer.waitForAck(streaming.lastSent);
    const last = streaming.lastSent;
    await eventually(() => assert.equal(fromStart.samples.at(-1)?.seq, last));
    await eventually(() => assert.equal(fromNow.samples.at(-1)?.seq, last));
    assertContiguous(
      fromStart.samples.map((s) => s.seq),
      1,
      last,
    );
    const seen = fromNow.samples.map((s) => s.seq);
    assertContiguous(seen, seen[0], last);
    producer.close();
  });

  test('ending on the other instance commits everything and closes the producer with 1000', async (t) => {
    const { a, b } = await startTwoInstances(t);
    const session = await createSession(a.baseUrl);
    const viewer = new RecordingSocket(liveUrl(b.wsUrl, session.sessionId, 1));
    await viewer.opened;
    const producer = new RecordingSocket(ingestUrl(a.wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    producer.send({ samples: makeSamples(1, 500) });
    producer.send({ samples: makeSamples(501, 500) });
    // End once the samples are accepted (the viewer on B has them): end covers what was
    // accepted, not frames still on their way.
    await eventually(() => assert.equal(viewer.samples.at(-1)?.seq, 1_000));
    const ended = await endSession(b.baseUrl, session.sessionId, session.ingestToken);
    assert.equal(ended.status, 200);
    assert.equal(ended.body.status, 'ended');
    assert.equal(ended.body.sampleCount, 1_000);
    assert.equal((await producer.waitForClose()).code, 1000);
    assert.equal(producer.lastAck, 1_000);
    assert.equal((await viewer.waitForClose()).code, 1000);
    assertContiguous(
      viewer.samples.map((s) => s.seq),
      1,
      1_000,
    );
    assert.deepEqual(viewer.messages.at(-1), { type: 'session_ended' });
  });

  test('a second producer is refused on another instance, and a producer moving there stores each sample once', async (t) => {
    const { a, b } = await startTwoInstances(t);
    const session = await createSession(a.baseUrl);
    const first = new RecordingSocket(ingestUrl(a.wsUrl, session.sessionId, session.ingestToken));
    await first.opened;
    first.send({ samples: makeSamples(1, 100) });
    await first.waitForAck(100);
    const rival = new RecordingSocket(ingestUrl(b.wsUrl, session.sessionId, session.ingestToken));
    assert.equal((await rival.waitForClose()).code, 4409);
    first.send({ samples: makeSamples(101, 100) });
    first.close();
    const moved = await eventually(async () => {
      const socket = new RecordingSocket(ingestUrl(b.wsUrl, session.sessionId, session.ingestToken));
      await socket.opened;
      await new Promise((resolve) => setTimeout(resolve, 50));
      if (socket.closed) throw new Error(`refused with ${socket.closed.code}`);
      return socket;
    });
    moved.send({ samples: makeSamples(1, 300) });
    await moved.waitForAck(300);
    assertContiguous(
      (await getData(a.baseUrl, session.sessionId)).samples.map((s) => s.seq),
      1,
      300,
    );
    moved.close();
  });
});
