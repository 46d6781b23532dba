/**
 * The live socket (docs/protocol.md, live socket): every viewer sees the same
 * samples in seq order; `fromSeq` joins stored history to live data with no gap and no
 * duplicate, while the producer streams; ended sessions, refusals, a viewer that stops
 * reading (1013) and peers that stop answering pings.
 *
 * The producer always sends contiguous seqs and makeSamples' deterministic values, so what a
 * viewer must have received is exactly makeSamples(fromSeq, last - fromSeq + 1).
 */
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { describe, type TestContext, test } from 'node:test';
import { setTimeout as pace, setImmediate } from 'node:timers/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import WebSocket from 'ws';
import { startApp } from '../support/app.ts';
import {
  createSession,
  endSession,
  getData,
  ingestUrl,
  liveUrl,
  makeSamples,
  RecordingSocket,
  refusedUpgrade,
  type Sample,
} from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';

function seqRange(from: number, to: number): number[] {
  return Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
}

/** Checks seqs first, so a gap or duplicate fails with a readable message before the values are compared. */
function assertReceivedExactly(viewer: RecordingSocket, fromSeq: number, lastSeq: number, label = ''): void {
  const seqs = viewer.samples.map((sample) => sample.seq);
  const expected = seqRange(fromSeq, lastSeq);
  if (seqs.length !== expected.length || seqs.some((seq, i) => seq !== expected[i])) {
    const firstWrong = seqs.findIndex((seq, i) => seq !== expected[i]);
    assert.fail(
      `${label}: expected seqs ${fromSeq}..${lastSeq} (${expected.length}), got ${seqs.length}; ` +
        `first difference at index ${firstWrong}: ${seqs.slice(Math.max(0, firstWrong - 2), firstWrong + 3)}`,
    );
  }
  assert.deepEqual(viewer.samples, makeSamples(fromSeq, lastSeq - fromSeq + 1), label);
}

/** The seq of the newest sample received; cheap, unlike `viewer.samples`, which copies them all. */
function lastSeqOf(viewer: RecordingSocket): number | null {
  for (let i = viewer.messages.length - 1; i >= 0; i--) {
    const samples = viewer.messages[i].payload?.samples as Sample[] | undefined;
    if (samples && samples.length > 0) return samples[samples.length - 1].seq;
  }
  return null;
}

async function waitForSeq(viewer: RecordingSocket, seq: number, timeoutMs = 10_000): Promise<void> {
  await eventually(
    () => {
      const last = lastSeqOf(viewer);
      if (last === null || last < seq) throw new Error(`viewer ${viewer.socket.url} at ${last}, waiting for ${seq}`);
    },
    { timeoutMs },
  );
}

async function openViewer(t: TestContext, url: string): Promise<RecordingSocket> {
  const viewer = new RecordingSocket(url);
  t.after(() => viewer.socket.terminate());
  await viewer.opened;
  return viewer;
}

async function startSession(t: TestContext, env: Record<string, string> = {}) {
  const { app, baseUrl, wsUrl } = await startApp(t, env);
  const session = await createSession(baseUrl);
  const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  t.after(() => producer.socket.terminate());
  await producer.opened;
  const live = (fromSeq?: number | string) =>
    openViewer(t, fromSeq === undefined ? liveUrl(wsUrl, session.sessionId) : `${liveUrl(wsUrl, session.sessionId)}?fromSeq=${fromSeq}`);
  return { app, baseUrl, wsUrl, session, producer, live };
}

/** The close code of a socket the server refuses right after the upgrade. */
async function refusalCode(url: string): Promise<{ code: number; messages: unknown[] }> {
  const socket = new RecordingSocket(url);
  const { code } = await socket.waitForClose();
  return { code, messages: socket.messages };
}

describe('live socket: fan-out', () => {
  test('twenty viewers receive identical samples, in order, exactly as sent', async (t) => {
    const { producer, live } = await startSession(t);
    const viewers = await Promise.all(Array.from({ length: 20 }, () => live()));
    const sent = makeSamples(1, 2_000);
    for (let i = 0; i < sent.length; i += 100) producer.send({ samples: sent.slice(i, i + 100) });
    await producer.waitForAck(2_000);
    for (const [i, viewer] of viewers.entries()) {
      await waitForSeq(viewer, 2_000);
      assertReceivedExactly(viewer, 1, 2_000, `viewer ${i}`);
      assert.equal(viewer.closed, null);
    }
    for (const message of viewers[0].messages) assert.equal(message.type, 'samples_batch');
  });

  test('frames of every size reach viewers whole, one over 64 KiB included', async (t) => {
    const { producer, live } = await startSession(t);
    const viewer = await live();
    const sizes = [1, 100, 3_000];
    let seq = 1;
    for (const size of sizes) {
      producer.send({ samples: makeSamples(seq, size) });
      seq += size;
    }
    await waitForSeq(viewer, seq - 1);
    assertReceivedExactly(viewer, 1, seq - 1);
    assert.deepEqual(
      viewer.messages.map((message) => message.payload.samples.length),
      sizes,
    );
  });

  test('a viewer without fromSeq gets only samples accepted after it subscribed', async (t) => {
    const { producer, live } = await startSession(t);
    producer.send({ samples: makeSamples(1, 50) });
    await producer.waitForAck(50);
    const viewer = await live();
    producer.send({ samples: makeSamples(51, 50) });
    await waitForSeq(viewer, 100);
    assertReceivedExactly(viewer, 51, 100);
  });

  test('a viewer on the legacy /ws/{id} path without a token is a live viewer', async (t) => {
    const { wsUrl, session, producer } = await startSession(t);
    const viewer = await openViewer(t, `${wsUrl}/ws/${session.sessionId}`);
    producer.send({ samples: makeSamples(1, 30) });
    await waitForSeq(viewer, 30);
    assertReceivedExactly(viewer, 1, 30);
  });
});

describe('live socket: number spellings', () => {
  test('viewers get the same float64 values the producer sent and the database holds, however the numbers were spelled', async (t) => {
    const { baseUrl, session, producer, live } = await startSession(t);
    const viewer = await live();
    // Valid JSON that is not the shortest spelling: whitespace, exponents, trailing zeros,
    // -0, the float64 extremes, keys out of order, escaped and repeated keys.
    const frames = [
      '{ "samples" : [ {"t": 1.50, "seq": 1, "az": -0, "ay": 1e2, "ax": 0.1000},\n ' +
        '{"seq":2,"t":2E0,"ax":-0.0,"ay":1.7976931348623157e308,"az":5e-324} ] }',
      '{"type":"samples_batch","payload":{"samples":[' +
        '{"seq":3,"t":3,"\\u0061x":1,"ay":2,"az":3},{"seq":4,"t":4,"ax":1,"ay":2,"az":3,"ax":-4.25}]}}',
      '{"seq":5,"t":1732345678901.25,"ax":0.012,"ay":-0.981,"az":0.104}',
    ];
    const expected = frames.flatMap((text) => {
      const frame = JSON.parse(text);
      return (frame.samples ?? frame.payload?.samples ?? [frame]) as Sample[];
    });
    for (const frame of frames) producer.send(frame);
    await producer.waitForAck(5);
    await waitForSeq(viewer, 5);
    assert.deepEqual(producer.ofType('error'), []);
    assert.deepStrictEqual(viewer.samples, expected);
    assert.deepStrictEqual((await getData(baseUrl, session.sessionId)).samples, expected);
    const late = await live(1);
    await waitForSeq(late, 5);
    assert.deepStrictEqual(late.samples, expected);
  });
});

describe('live socket: fromSeq joins history to live with no gap and no duplicate', () => {
  // A producer at about 1 kHz: 20 frames a second of 50 samples, for about 3 seconds.
  const framesPerS = 20;
  const samplesPerFrame = 50;
  const frameCount = 60;
  const lastSeq = frameCount * samplesPerFrame;

  async function streamWhileViewersJoin(t: TestContext, env: Record<string, string>) {
    const { producer, live } = await startSession(t, env);
    const early = await live(1);
    const joined: Array<{ viewer: RecordingSocket; fromSeq: number; label: string }> = [
      { viewer: early, fromSeq: 1, label: 'before any data, fromSeq=1' },
    ];
    const fromNow: RecordingSocket[] = [];
    const joining: Array<Promise<void>> = [];
    const join = (fromSeq: number, label: string) => {
      // Joined without awaiting, so the producer's pace is not held up by the upgrade.
      joining.push(live(fromSeq).then((viewer) => void joined.push({ viewer, fromSeq, label })));
    };

    let sent = 0;
    const started = performance.now();
    for (let frame = 0; frame < frameCount; frame++) {
      producer.send({ samples: makeSamples(sent + 1, samplesPerFrame) });
      sent += samplesPerFrame;
      if (frame % 10 === 5) {
        join(1, `at ${sent}, fromSeq=1`);
        join(Math.ceil(sent / 2), `at ${sent}, fromSeq=${Math.ceil(sent / 2)}`);
        join(sent, `at ${sent}, fromSeq=${sent} (the last sent)`);
        join(sent + 1, `at ${sent}, fromSeq=${sent + 1} (the next)`);
        join(sent + 120, `at ${sent}, fromSeq=${sent + 120} (ahead)`);
        joining.push(live().then((viewer) => void fromNow.push(viewer)));
      }
      const dueMs = started + ((frame + 1) * 1000) / framesPerS;
      await pace(Math.max(0, dueMs - performance.now()));
    }
    await Promise.all(joining);
    // One more frame once everyone has joined, so that a viewer "from now on" that joined
    // after the paced frames (a slow upgrade on a busy machine) still has something to get.
    producer.send({ samples: makeSamples(lastSeq + 1, samplesPerFrame) });
    const finalSeq = lastSeq + samplesPerFrame;
    await producer.waitForAck(finalSeq, 10_000);

    assert.equal(joined.length, 1 + 6 * 5);
    for (const { viewer, fromSeq, label } of joined) {
      await waitForSeq(viewer, finalSeq);
      assertReceivedExactly(viewer, fromSeq, finalSeq, label);
      assert.equal(viewer.closed, null, label);
    }
    // Without fromSeq a viewer starts wherever it joined, but from there on nothing is missing.
    for (const viewer of fromNow) {
      await waitForSeq(viewer, finalSeq);
      const first = viewer.samples[0]?.seq ?? finalSeq;
      assertReceivedExactly(viewer, first, finalSeq, 'without fromSeq');
    }
  }

  test('with no recent window, history comes from the database', async (t) => {
    await streamWhileViewersJoin(t, { LIVE_RECENT_WINDOW_BYTES: '0' });
  });

  test('with a small recent window, history comes from the database and then the window', async (t) => {
    await streamWhileViewersJoin(t, { LIVE_RECENT_WINDOW_BYTES: '16384' });
  });

  test('with a window larger than the session, history comes from the window', async (t) => {
    await streamWhileViewersJoin(t, { LIVE_RECENT_WINDOW_BYTES: String(64 * 1024 * 1024) });
  });

  test('a fromSeq beyond the last seq waits, then gets live samples from fromSeq on', async (t) => {
    const { producer, live } = await startSession(t);
    producer.send({ samples: makeSamples(1, 10) });
    await producer.waitForAck(10);
    const ahead = await live(20);
    const next = await live(11);
    assert.deepEqual(ahead.messages, []);
    producer.send({ samples: makeSamples(11, 20) });
    await waitForSeq(ahead, 30);
    await waitForSeq(next, 30);
    assertReceivedExactly(ahead, 20, 30, 'fromSeq=20');
    assertReceivedExactly(next, 11, 30, 'fromSeq=11');
  });

  test('fromSeq=0 and fromSeq=1 both start at the first sample', async (t) => {
    const { producer, live } = await startSession(t);
    producer.send({ samples: makeSamples(1, 10) });
    await producer.waitForAck(10);
    const zero = await live(0);
    const one = await live(1);
    await waitForSeq(zero, 10);
    await waitForSeq(one, 10);
    assertReceivedExactly(zero, 1, 10);
    assertReceivedExactly(one, 1, 10);
  });
});

describe('live socket: ended sessions', () => {
  test('viewers get session_ended after the last samples, then a close with 1000', async (t) => {
    const { baseUrl, session, producer, live } = await startSession(t);
    const fromNow = await live();
    const fromStart = await live(1);
    producer.send({ samples: makeSamples(1, 40) });
    // End once the samples are accepted (a viewer has them): end covers what was accepted,
    // not frames still on their way or waiting for the producer to attach.
    await waitForSeq(fromNow, 40);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    for (const viewer of [fromNow, fromStart]) {
      assert.equal((await viewer.waitForClose()).code, 1000);
      assertReceivedExactly(viewer, 1, 40);
      assert.deepEqual(viewer.messages.at(-1), { type: 'session_ended' });
      assert.equal(viewer.ofType('session_ended').length, 1);
    }
  });

  test('a viewer with fromSeq on an ended session gets the whole history, then session_ended and 1000', async (t) => {
    const { baseUrl, session, producer, live } = await startSession(t);
    producer.send({ samples: makeSamples(1, 500) });
    await producer.waitForAck(500);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);

    for (const fromSeq of [1, 250, 500]) {
      const viewer = await live(fromSeq);
      assert.equal((await viewer.waitForClose()).code, 1000);
      assertReceivedExactly(viewer, fromSeq, 500, `fromSeq=${fromSeq}`);
      assert.deepEqual(viewer.messages.at(-1), { type: 'session_ended' });
    }
    const beyond = await live(501);
    assert.equal((await beyond.waitForClose()).code, 1000);
    assert.deepEqual(beyond.messages, [{ type: 'session_ended' }]);
  });

  test('a viewer without fromSeq on an ended session gets session_ended and 1000 at once', async (t) => {
    const { baseUrl, session, producer, live } = await startSession(t);
    producer.send({ samples: makeSamples(1, 20) });
    await producer.waitForAck(20);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    const viewer = await live();
    assert.equal((await viewer.waitForClose()).code, 1000);
    assert.deepEqual(viewer.messages, [{ type: 'session_ended' }]);
  });

  test('a session ended before any sample gives a fromSeq viewer just session_ended and 1000', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    const viewer = await openViewer(t, liveUrl(wsUrl, session.sessionId, 1));
    assert.equal((await viewer.waitForClose()).code, 1000);
    assert.deepEqual(viewer.messages, [{ type: 'session_ended' }]);
  });
});

describe('live socket: refusals', () => {
  test('refuses a fromSeq that is not an integer from 0 to 2^53-1 in decimal digits with 1008', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    for (const fromSeq of ['-1', 'abc', '1.5', '9007199254740992', '%20', '0x10', '1e3', '5.0', '+1']) {
      const refused = await refusalCode(`${liveUrl(wsUrl, session.sessionId)}?fromSeq=${fromSeq}`);
      assert.deepEqual(refused, { code: 1008, messages: [] }, `fromSeq=${fromSeq}`);
    }
  });

  test('refuses an unknown session, or an id that is not a UUID, with 4404', async (t) => {
    const { wsUrl } = await startApp(t);
    assert.deepEqual(await refusalCode(liveUrl(wsUrl, crypto.randomUUID())), { code: 4404, messages: [] });
    assert.deepEqual(await refusalCode(liveUrl(wsUrl, crypto.randomUUID(), 1)), { code: 4404, messages: [] });
    assert.deepEqual(
      await refusalCode(`${liveUrl(wsUrl, crypto.randomUUID())}?fromSeq=-1`),
      { code: 4404, messages: [] },
      '4404 comes first',
    );
    assert.deepEqual(await refusalCode(liveUrl(wsUrl, 'not-a-uuid')), { code: 4404, messages: [] });
  });
});

describe('socket upgrades refused before the handshake', () => {
  test('a path with no socket is a 404 problem, with the request id the client gave', async (t) => {
    const { wsUrl } = await startApp(t);
    for (const path of ['/api/v1/sessions/nothing', '/health', `/api/v1/sessions/${crypto.randomUUID()}/live/more`]) {
      const refused = await refusedUpgrade(`${wsUrl}${path}`, { 'x-request-id': 'upgrade-42' });
      assert.equal(refused.status, 404, path);
      assert.match(String(refused.headers['content-type']), /^application\/problem\+json/);
      assert.equal(refused.headers['x-request-id'], 'upgrade-42');
      assert.equal(refused.body.code, 'not_found');
    }
  });
});

describe('live socket: a viewer that stops reading', () => {
  test('is closed with 1013 while a healthy viewer gets every sample and the producer every ack', async (t) => {
    const { baseUrl, producer, live } = await startSession(t, { LIVE_MAX_BUFFERED_BYTES: '65536', INGEST_MAX_SAMPLES_PER_S: '0' });
    const healthy = await live();
    const stalled = await live();
    const stalledTcp = (stalled.socket as unknown as { _socket: Socket })._socket;
    // Not reading fills the kernel's buffers on both ends (a few MiB on loopback), then the server's own.
    stalledTcp.pause();
    // The paused client cannot see its close until it reads again, so the server's count of
    // viewers it closed as slow tells when to stop streaming.
    const stalledWasClosed = async () =>
      /^wavehouse_live_slow_viewers_closed_total 1$/m.test(await (await fetch(`${baseUrl}/metrics`)).text());

    const samplesPerFrame = 200;
    const maxFrames = 1_500;
    let frames = 0;
    let framesAfterClose = 0;
    let closed = false;
    // Streams on for a while after the close, to show it changed nothing for the others.
    while (frames < maxFrames && framesAfterClose < 50) {
      producer.send({ samples: makeSamples(frames * samplesPerFrame + 1, samplesPerFrame) });
      frames++;
      if (closed) framesAfterClose++;
      // Paced by the healthy viewer, which reads as fast as it can, as a real one would.
      if (frames % 10 === 0) {
        await waitForSeq(healthy, frames * samplesPerFrame);
        closed ||= await stalledWasClosed();
      }
    }
    assert.ok(framesAfterClose > 0, `the stalled viewer was still open after ${frames * samplesPerFrame} samples`);
    const lastSeq = frames * samplesPerFrame;
    await producer.waitForAck(lastSeq, 15_000);
    await waitForSeq(healthy, lastSeq);
    assertReceivedExactly(healthy, 1, lastSeq, 'healthy viewer');
    assert.equal(healthy.closed, null);
    assert.equal(producer.closed, null);
    assert.deepEqual(producer.ofType('error'), []);

    // Reading again lets the stalled viewer see what was sent before the close, then the close.
    stalledTcp.resume();
    assert.equal((await stalled.waitForClose(10_000)).code, 1013);
    const got = stalled.samples;
    assert.ok(got.length < lastSeq, `the stalled viewer got all ${got.length} samples`);
    assertReceivedExactly(stalled, 1, got.at(-1)?.seq ?? 0, 'stalled viewer, up to where it was closed');
  });
});

describe('live socket: memory of an idle viewer', () => {
  test('an open viewer keeps nothing of its upgrade request alive', async (t) => {
    const { app, baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const requests: Array<WeakRef<IncomingMessage>> = [];
    app.server.server.on('upgrade', (request: IncomingMessage) => requests.push(new WeakRef(request)));
    const viewers = await Promise.all(
      [liveUrl(wsUrl, session.sessionId), `${wsUrl}/ws/${session.sessionId}`].map((url) => openViewer(t, url)),
    );
    // A gc() of its own (the flag, then a fresh context that has it), without running the suite under --expose-gc.
    setFlagsFromString('--expose-gc');
    const collectGarbage = runInNewContext('gc') as () => void;
    // A WeakRef's target lives at least until the current job ends, so each check collects, then yields.
    await eventually(async () => {
      collectGarbage();
      await setImmediate();
      assert.equal(requests.filter((request) => request.deref() !== undefined).length, 0, 'upgrade requests still reachable');
    });
    for (const viewer of viewers) assert.equal(viewer.closed, null);
  });
});

describe('liveness pings', () => {
  test('a peer that does not answer pings is terminated within a few intervals, while one that does stays', async (t) => {
    const { wsUrl, session } = await startSession(t, { PING_INTERVAL_MS: '200' });
    const url = liveUrl(wsUrl, session.sessionId);
    const watch = (socket: WebSocket) => {
      const seen = { pings: 0, closedAt: null as number | null, code: null as number | null };
      socket.on('ping', () => seen.pings++);
      socket.on('close', (code) => {
        seen.closedAt = performance.now();
        seen.code = code;
      });
      socket.on('error', () => undefined);
      t.after(() => socket.terminate());
      return seen;
    };
    const silent = new WebSocket(url, { autoPong: false });
    const answering = new WebSocket(url);
    const silentSeen = watch(silent);
    const answeringSeen = watch(answering);
    await Promise.all([silent, answering].map((socket) => new Promise((resolve) => socket.once('open', resolve))));
    const openedAt = performance.now();

    await eventually(() => assert.notEqual(silentSeen.closedAt, null, 'silent peer still connected'), { timeoutMs: 3_000 });
    // Two unanswered pings, then the cut: no close frame, so the client sees an abnormal closure.
    assert.ok(silentSeen.pings >= 2, `terminated after ${silentSeen.pings} pings`);
    assert.equal(silentSeen.code, 1006);
    assert.ok(silentSeen.closedAt! - openedAt < 2_000, `terminated after ${silentSeen.closedAt! - openedAt} ms`);

    // Outlive the silent peer by several more intervals.
    const pingsAtCut = answeringSeen.pings;
    await eventually(
      () =>
        assert.ok(
          answeringSeen.pings >= pingsAtCut + 4,
          `${answeringSeen.pings - pingsAtCut} pings since the cut; closed at ${answeringSeen.closedAt}`,
        ),
      { timeoutMs: 3_000 },
    );
    assert.equal(answeringSeen.closedAt, null);
    assert.equal(answering.readyState, WebSocket.OPEN);
  });

  test('pings are spread over the interval, each socket still pinged once an interval; a silent one among them is cut', async (t) => {
    // 1 s in 4 slices of 250 ms. Pinging every socket at once held the event loop for the
    // whole sweep and its pongs, late for every live frame behind it.
    const { wsUrl, session } = await startSession(t, { PING_INTERVAL_MS: '1000' });
    const pingTimes: number[][] = [];
    for (let i = 0; i < 8; i++) {
      const viewer = await openViewer(t, liveUrl(wsUrl, session.sessionId));
      const times: number[] = [];
      viewer.socket.on('ping', () => times.push(performance.now()));
      pingTimes.push(times);
    }
    // The ninth shares a slice with two of them, and never answers.
    const silent = new WebSocket(liveUrl(wsUrl, session.sessionId), { autoPong: false });
    t.after(() => silent.terminate());
    silent.on('error', () => undefined);
    const silentClosed = new Promise<number>((resolve) => silent.once('close', resolve));
    await new Promise((resolve) => silent.once('open', resolve));

    await eventually(
      () =>
        assert.ok(
          pingTimes.every((times) => times.length >= 2),
          `pings: ${pingTimes.map((times) => times.length)}`,
        ),
      { timeoutMs: 4_000 },
    );
    const firsts = pingTimes.map((times) => times[0]);
    assert.ok(
      Math.max(...firsts) - Math.min(...firsts) >= 500,
      `first pings within ${Math.max(...firsts) - Math.min(...firsts)} ms of each other`,
    );

    assert.equal(await Promise.race([silentClosed, pace(5_000, 'still open')]), 1006);
    // Its slice goes on: every other socket is pinged again after the cut, about once a second.
    const countsAtCut = pingTimes.map((times) => times.length);
    await eventually(
      () =>
        assert.ok(
          pingTimes.every((times, i) => times.length >= countsAtCut[i] + 2),
          `pings since the cut: ${pingTimes.map((times, i) => times.length - countsAtCut[i])}`,
        ),
      { timeoutMs: 4_000 },
    );
    for (const times of pingTimes) {
      for (let i = 1; i < times.length; i++) {
        const gap = times[i] - times[i - 1];
        assert.ok(gap > 600 && gap < 1_500, `pinged ${gap} ms after the previous ping`);
      }
    }
  });

  test('after the event loop was held for several intervals, a peer that answers is pinged once, not cut', async (t) => {
    const { wsUrl, session } = await startSession(t, { PING_INTERVAL_MS: '200' });
    const peer = await openViewer(t, liveUrl(wsUrl, session.sessionId));
    let pings = 0;
    peer.socket.on('ping', () => pings++);
    await eventually(() => assert.ok(pings >= 1, 'no ping yet'));
    // The server runs in this process: holding the loop holds its ping clock too. Catching up
    // every missed round at once would ping the peer four times before it could answer one.
    const heldUntil = performance.now() + 900;
    while (performance.now() < heldUntil);
    const pingsAfterHold = pings;
    await eventually(
      () =>
        assert.ok(pings >= pingsAfterHold + 4, `${pings - pingsAfterHold} pings since the hold; closed: ${JSON.stringify(peer.closed)}`),
      { timeoutMs: 3_000 },
    );
    assert.equal(peer.closed, null);
  });

  test('a producer that does not answer pings is terminated too', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { PING_INTERVAL_MS: '200' });
    const session = await createSession(baseUrl);
    const silent = new WebSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken), { autoPong: false });
    t.after(() => silent.terminate());
    const closed = new Promise<number>((resolve) => silent.once('close', resolve));
    silent.on('error', () => undefined);
    await new Promise((resolve) => silent.once('open', resolve));
    silent.send(JSON.stringify({ samples: makeSamples(1, 5) }));
    const code = await Promise.race([closed, pace(3_000, 'still open')]);
    assert.equal(code, 1006);
    // What it sent before going silent was accepted and is stored.
    await eventually(async () => assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 5) as Sample[]));
  });
});
