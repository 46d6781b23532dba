/**
 * The client SDK against the real server: the Producer keeps every sample until it is acked
 * and resends across reconnects (a server restart included), numbering seqs on from what the
 * session already stores; the Viewer resumes with no hole and no duplicate; backpressure,
 * flush and end mean what they say; refusals fail loudly instead of retrying forever.
 *
 * Samples pushed without seq get 1, 2, 3... from the SDK, so the i-th pushed sample must come
 * back as `sampleFor(i)` everywhere: at the viewer and in GET /data.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { describe, test } from 'node:test';
import { setTimeout as pace } from 'node:timers/promises';
import WebSocket from 'ws';
import { Producer } from '../../src/sdk/producer.ts';
import { ProducerError, type ProducerOptions } from '../../src/sdk/producer-api.ts';
import { createSession, getSession, readData, TruncatedDataError, WavehouseHttpError } from '../../src/sdk/rest.ts';
import type { Sample, SampleInput } from '../../src/sdk/types.ts';
import { Viewer, ViewerError, type ViewerOptions } from '../../src/sdk/viewer.ts';
import type { WebSocketConstructor } from '../../src/sdk/websocket.ts';
import { startApp } from '../support/app.ts';
import { getData, ingestUrl, RecordingSocket } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { expectedSamples, SampleChecker, storeSamplesDirectly } from '../support/export-streams.ts';
import { startRestartableApp } from '../support/sdk-restart.ts';
import { startUpgradeRecorder } from '../support/upgrade-recorder.ts';

/** Quick retries keep the reconnect tests fast; the policy itself is the SDK's. */
const quickBackoff = { initialDelayMs: 20, maxDelayMs: 250 };

/** Values that a careless encoder gets wrong: the sign of zero, 0.1, extremes. */
const awkward = [-0, 0.1, 5e-324, -1.7976931348623157e308, 1e21];

function sampleFor(seq: number): Sample {
  return {
    seq,
    t: 1_700_000_000_000 + seq * 2.5,
    ax: seq % 97 === 0 ? awkward[(seq / 97) % awkward.length] : Math.sin(seq / 10) * 9.81,
    ay: Math.cos(seq / 7),
    az: seq / 3,
  };
}

/** Samples `from..from+count-1` as pushed: without their seq, which the SDK assigns. */
function unnumbered(from: number, count: number): SampleInput[] {
  return Array.from({ length: count }, (_, i) => {
    const { seq: _seq, ...rest } = sampleFor(from + i);
    return rest;
  });
}

function expected(from: number, to: number): Sample[] {
  return Array.from({ length: to - from + 1 }, (_, i) => sampleFor(from + i));
}

/** Seqs first, so a hole or a duplicate fails with a readable message before values are compared. */
function assertExactly(actual: Sample[], from: number, to: number, label: string): void {
  const seqs = actual.map((sample) => sample.seq);
  const firstWrong = seqs.findIndex((seq, i) => seq !== from + i);
  if (seqs.length !== to - from + 1 || firstWrong !== -1) {
    assert.fail(
      `${label}: expected seqs ${from}..${to}, got ${seqs.length} samples; ` +
        `first difference at index ${firstWrong}: ${seqs.slice(Math.max(0, firstWrong - 2), firstWrong + 3)}`,
    );
  }
  assert.deepEqual(actual, expected(from, to), label);
}

function withTimeout<T>(promise: Promise<T>, timeoutMs: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not done within ${timeoutMs} ms`)), timeoutMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Iterates a viewer in the background, keeping what it yields. */
function collect(viewer: Viewer): { samples: Sample[]; done: Promise<void> } {
  const samples: Sample[] = [];
  const done = (async () => {
    for await (const sample of viewer) samples.push(sample);
  })();
  // Inspected by the test that expects it to fail; never an unhandled rejection meanwhile.
  done.catch(() => undefined);
  return { samples, done };
}

function producerFor(t: { after(fn: () => void): void }, options: ProducerOptions): Producer {
  const producer = new Producer({ backoff: quickBackoff, ...options });
  t.after(() => producer.close());
  return producer;
}

function viewerFor(t: { after(fn: () => void): void }, options: ViewerOptions): Viewer {
  const viewer = new Viewer({ backoff: quickBackoff, ...options });
  t.after(() => viewer.close());
  return viewer;
}

describe('Producer and Viewer', () => {
  test('in Node the Producer sends its token as Authorization: Bearer, not in the URL; a WHATWG-only socket has it there', async (t) => {
    const { baseUrl } = await startApp(t);
    const proxy = await startUpgradeRecorder(t, baseUrl);
    const { sessionId, ingestToken } = await createSession(baseUrl);
    const ingestPath = `/api/v1/sessions/${sessionId}/ingest`;

    const producer = producerFor(t, { baseUrl: proxy.url, sessionId, token: ingestToken });
    producer.push(unnumbered(1, 10));
    await producer.flush({ timeoutMs: 10_000 });
    producer.close();
    assert.equal(proxy.upgrades.length, 1);
    assert.equal(proxy.upgrades[0].url, ingestPath);
    assert.equal(proxy.upgrades[0].headers.authorization, `Bearer ${ingestToken}`);

    // As a browser's WebSocket is: a URL, and no way to add a header.
    class UrlOnlyWebSocket extends WebSocket {
      constructor(url: string) {
        super(url);
      }
    }
    const urlOnly = producerFor(t, {
      baseUrl: proxy.url,
      sessionId,
      token: ingestToken,
      WebSocket: UrlOnlyWebSocket as unknown as WebSocketConstructor,
    });
    urlOnly.push(unnumbered(11, 10));
    await urlOnly.end({ timeoutMs: 10_000 });
    assert.equal(proxy.upgrades.length, 2);
    assert.equal(proxy.upgrades[1].url, `${ingestPath}?token=${encodeURIComponent(ingestToken)}`);
    assert.equal(proxy.upgrades[1].headers.authorization, undefined);

    assertExactly((await getData(baseUrl, sessionId)).samples, 1, 20, 'both were accepted: GET /data');
  });

  test('samples pushed through a Producer reach a Viewer exactly once, in order, and are stored once', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const seen = collect(viewerFor(t, { baseUrl, sessionId: session.sessionId }));
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    const acks: number[] = [];
    producer.on('ack', ({ seq }) => acks.push(seq));

    // Pushes of every size: one sample, a few, more than a batch.
    let next = 1;
    for (const size of [1, 7, 50, 120, 1, 3000 - 1 - 7 - 50 - 120 - 1]) {
      producer.push(unnumbered(next, size));
      next += size;
    }
    producer.push(unnumbered(next, 1)[0]);
    const last = next;

    const ended = await producer.end({ timeoutMs: 10_000 });
    assert.equal(ended.status, 'ended');
    assert.equal(ended.sampleCount, last);
    assert.equal(ended.lastSeq, last);
    assert.equal(producer.lastAckedSeq, last);
    assert.equal(producer.bufferedSamples, 0);
    assert.ok(
      acks.every((seq, i) => i === 0 || seq >= acks[i - 1]),
      'acks never go back',
    );

    await withTimeout(seen.done, 10_000, 'the viewer ending with the session');
    assertExactly(seen.samples, 1, last, 'viewer');
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, last, 'GET /data');
  });

  test('a new Producer on a session continues its seqs, as a restarted producer process would', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const options = { baseUrl, sessionId: session.sessionId, token: session.ingestToken };

    const first = producerFor(t, options);
    first.push(unnumbered(1, 100));
    await first.flush({ timeoutMs: 10_000 });
    assert.equal(first.lastPushedSeq, 100);
    first.close();

    // Pushed before it has connected: the seqs are given once the server says where they go on.
    const second = producerFor(t, options);
    second.push(unnumbered(101, 150));
    assert.equal(second.lastPushedSeq, null);
    await second.flush({ timeoutMs: 10_000 });
    assert.equal(second.lastPushedSeq, 250);
    await second.end({ timeoutMs: 10_000 });

    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, 250, 'GET /data');
  });

  test('a caller may give every seq itself; they are sent as given', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    producer.push(expected(10, 19));
    producer.push(expected(30, 39));
    assert.throws(() => producer.push(sampleFor(39)), /not above the previous seq 39/);
    assert.throws(() => producer.push(unnumbered(40, 1)), /every pushed sample has a seq or none/);
    await producer.end({ timeoutMs: 10_000 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [...expected(10, 19), ...expected(30, 39)]);
  });

  test('a server restart mid-stream loses nothing and duplicates nothing, at the viewer and in storage', async (t) => {
    const server = await startRestartableApp(t);
    const { baseUrl } = server;
    const session = await createSession(baseUrl);
    const viewer = viewerFor(t, { baseUrl, sessionId: session.sessionId });
    const viewerCloses: number[] = [];
    viewer.on('disconnected', ({ code }) => viewerCloses.push(code));
    const seen = collect(viewer);
    const producer = producerFor(t, {
      baseUrl,
      sessionId: session.sessionId,
      token: session.ingestToken,
      maxBatchSamples: 20,
      maxBatchDelayMs: 10,
    });
    const producerCloses: number[] = [];
    let resent = 0;
    producer.on('disconnected', ({ code }) => producerCloses.push(code));
    producer.on('connected', ({ resentSamples }) => {
      resent += resentSamples;
    });

    // The workload: 20 samples every 5 ms, pushed whether or not the server is up.
    let pushed = 0;
    let stopped = false;
    const streaming = (async () => {
      const deadline = Date.now() + 60_000;
      while (!stopped && Date.now() < deadline) {
        if (!producer.push(unnumbered(pushed + 1, 20))) await producer.ready();
        pushed += 20;
        await pace(5);
      }
    })();
    t.after(() => {
      stopped = true;
    });

    await eventually(() => assert.ok((producer.lastAckedSeq ?? 0) >= 1_000, `acked ${producer.lastAckedSeq}`), { timeoutMs: 10_000 });
    await server.restart();
    const pushedAtRestart = pushed;
    await eventually(() => assert.ok((producer.lastAckedSeq ?? 0) >= pushedAtRestart + 1_000, `acked ${producer.lastAckedSeq}`), {
      timeoutMs: 15_000,
    });
    stopped = true;
    await streaming;

    const ended = await producer.end({ timeoutMs: 15_000 });
    assert.equal(ended.sampleCount, pushed);
    await withTimeout(seen.done, 15_000, 'the viewer ending with the session');

    assert.equal(server.generation, 2);
    assert.ok(producerCloses.includes(1012), `producer saw ${producerCloses}`);
    assert.ok(viewerCloses.includes(1012), `viewer saw ${viewerCloses}`);
    assert.ok(resent > 0, 'what was pushed while the server was down went out on the new connection');
    assertExactly(seen.samples, 1, pushed, 'viewer');
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, pushed, 'GET /data');
  });

  test('push returns false above maxUnackedSamples, and drain fires once acks bring it back under', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken, maxUnackedSamples: 100 });
    const drained = new Promise<void>((resolve) => producer.once('drain', resolve));

    // Nothing can be acked yet: connecting starts only after this synchronous code.
    assert.equal(producer.push(unnumbered(1, 60)), true);
    assert.equal(producer.push(unnumbered(61, 60)), false);
    assert.equal(producer.bufferedSamples, 120);
    let ready = false;
    void producer.ready().then(() => {
      ready = true;
    });

    await withTimeout(drained, 10_000, 'drain');
    assert.ok(producer.bufferedSamples <= 100, `${producer.bufferedSamples} still buffered`);
    await eventually(() => assert.ok(ready, 'ready() resolved'));
    assert.equal(producer.push(unnumbered(121, 1)), true);
    await producer.end({ timeoutMs: 10_000 });
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, 121, 'GET /data');
  });

  test('flush resolves once everything pushed is committed; end flushes, ends and stops the producer', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    await withTimeout(producer.flush(), 1_000, 'flushing nothing');

    producer.push(unnumbered(1, 500));
    await producer.flush({ timeoutMs: 10_000 });
    assert.equal(producer.bufferedSamples, 0);
    // An ack means committed: the session's counters already show all of it.
    const afterFlush = await getSession(baseUrl, session.sessionId);
    assert.equal(afterFlush.sampleCount, 500);
    assert.equal(afterFlush.lastSeq, 500);

    producer.push(unnumbered(501, 10));
    const ended = await producer.end({ timeoutMs: 10_000 });
    assert.equal(ended.status, 'ended');
    assert.equal(ended.sampleCount, 510);
    assert.throws(
      () => producer.push(unnumbered(511, 1)),
      (error: unknown) => error instanceof ProducerError && error.code === 'closed',
    );
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, 510, 'GET /data');
  });

  test('a rate_limited frame is held back and resent, so nothing is lost', async (t) => {
    // The SDK sends up to 1,000 samples a frame; the server wants its rate at least a frame.
    const { baseUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '2000', INGEST_MAX_FRAME_SAMPLES: '1000' });
    const session = await createSession(baseUrl);
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    const errors: ProducerError[] = [];
    producer.on('error', (error) => errors.push(error));

    producer.push(unnumbered(1, 3_000));
    await producer.end({ timeoutMs: 15_000 });

    assert.ok(
      errors.length > 0 && errors.every((error) => error.code === 'rate_limited' && !error.fatal),
      `errors: ${errors.map((e) => e.code)}`,
    );
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, 3_000, 'GET /data');
  });

  test('while another producer holds the session (4409), the Producer keeps trying and gets in when it leaves', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const holder = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await holder.opened;
    holder.send({ samples: [] });
    await holder.waitForAck(-1);

    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    const closes: number[] = [];
    producer.on('disconnected', ({ code }) => closes.push(code));
    producer.push(unnumbered(1, 10));
    await eventually(() => assert.ok(closes.filter((code) => code === 4409).length >= 2, `closes: ${closes}`));
    assert.equal(producer.connected, false);

    holder.close();
    await producer.flush({ timeoutMs: 10_000 });
    assert.equal(producer.connected, true);
    assertExactly((await getData(baseUrl, session.sessionId)).samples, 1, 10, 'GET /data');
  });

  test('refusals are fatal: a wrong token, an unknown session, other channels, an ended session', async (t) => {
    const { baseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const isFatal = (code: string) => (error: unknown) => error instanceof ProducerError && error.code === code && error.fatal;

    const wrongToken = producerFor(t, { baseUrl, sessionId: session.sessionId, token: 'not-the-token' });
    const errors: ProducerError[] = [];
    wrongToken.on('error', (error) => errors.push(error));
    wrongToken.push(unnumbered(1, 1));
    await assert.rejects(withTimeout(wrongToken.flush(), 10_000, 'flush'), isFatal('invalid_token'));
    assert.deepEqual(
      errors.map((error) => error.code),
      ['invalid_token'],
    );
    assert.throws(() => wrongToken.push(unnumbered(2, 1)), isFatal('invalid_token'));

    const unknown = producerFor(t, { baseUrl, sessionId: crypto.randomUUID(), token: 'x' });
    unknown.push(unnumbered(1, 1));
    await assert.rejects(withTimeout(unknown.flush(), 10_000, 'flush'), isFatal('session_not_found'));

    const otherChannels = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken, channels: ['x'] });
    otherChannels.push({ x: 1 });
    await assert.rejects(withTimeout(otherChannels.flush(), 10_000, 'flush'), isFatal('wrong_channels'));

    const viewer = viewerFor(t, { baseUrl, sessionId: crypto.randomUUID() });
    await assert.rejects(
      withTimeout(collect(viewer).done, 10_000, 'viewer'),
      (error: unknown) => error instanceof ViewerError && error.code === 'session_not_found',
    );

    const owner = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    await owner.end({ timeoutMs: 10_000 });
    const late = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    late.push(unnumbered(1, 1));
    await assert.rejects(withTimeout(late.flush(), 10_000, 'flush'), isFatal('session_ended'));
  });

  test('a Viewer whose consumer falls behind lets go of the socket and resumes with no hole', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    await storeSamplesDirectly(databaseUrl, session.sessionId, 1, 5_000, { chunkSamples: 250 });
    const producer = producerFor(t, { baseUrl, sessionId: session.sessionId, token: session.ingestToken });
    await producer.end({ timeoutMs: 10_000 });

    const viewer = viewerFor(t, { baseUrl, sessionId: session.sessionId, fromSeq: 1, maxQueuedSamples: 500 });
    const paused: number[] = [];
    viewer.on('disconnected', ({ code, retryInMs }) => {
      if (retryInMs === null) paused.push(code);
    });
    const iterator = viewer[Symbol.asyncIterator]();
    const checker = new SampleChecker(1);
    const first = await withTimeout(iterator.next(), 10_000, 'the first sample');
    checker.check(first.value as Sample);
    // Not reading on: the queue fills past its bound and the viewer lets the socket go.
    await eventually(() => assert.ok(paused.length > 0, 'the viewer paused'), { timeoutMs: 10_000 });
    for (;;) {
      const next = await withTimeout(iterator.next(), 10_000, 'the next sample');
      if (next.done) break;
      checker.check(next.value);
    }
    assert.equal(checker.count, 5_000);
    assert.ok(paused.length >= 1);
    assert.ok(viewer.ended);
  });

  test('readData streams a stored session sample by sample, and by range', async (t) => {
    const { baseUrl, databaseUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    await storeSamplesDirectly(databaseUrl, session.sessionId, 1, 20_000);

    const checker = new SampleChecker(1);
    for await (const sample of readData(baseUrl, session.sessionId)) checker.check(sample);
    assert.equal(checker.count, 20_000);

    const range: Sample[] = [];
    for await (const sample of readData(baseUrl, session.sessionId, { fromSeq: 100, toSeq: 199 })) range.push(sample);
    assert.deepEqual(range, expectedSamples(100, 100));

    await assert.rejects(
      async () => {
        for await (const _sample of readData(baseUrl, crypto.randomUUID()));
      },
      (error: unknown) => error instanceof WavehouseHttpError && error.status === 404 && error.code === 'not_found',
    );
  });

  test('readData drops the request when the caller stops early, and throws on a body cut off mid-line', async (t) => {
    // A stand-in server: an endless NDJSON body, and a body that stops in the middle of a line.
    const sockets = new Set<Socket>();
    let endlessClosed = false;
    const server = http.createServer((request, response) => {
      response.writeHead(200, { 'content-type': 'application/x-ndjson' });
      if (request.url!.includes('/cut/')) {
        response.end('{"seq":1,"t":1,"ax":1}\n{"seq":2,"t":2,"a');
        return;
      }
      response.once('close', () => {
        endlessClosed = true;
      });
      let seq = 1;
      const write = () => {
        while (!response.destroyed && response.write(`{"seq":${seq},"t":${seq++},"ax":0}\n`));
        if (!response.destroyed) response.once('drain', write);
      };
      write();
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    t.after(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    });
    const baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

    let taken = 0;
    for await (const _sample of readData(baseUrl, 'endless')) {
      if (++taken === 10) break;
    }
    assert.equal(taken, 10);
    await eventually(() => assert.ok(endlessClosed, 'the server saw the request go away'));

    const read: Sample[] = [];
    await assert.rejects(
      async () => {
        for await (const sample of readData(baseUrl, 'cut')) read.push(sample);
      },
      (error: unknown) => error instanceof TruncatedDataError && error.samplesRead === 1,
    );
    assert.deepEqual(read, [{ seq: 1, t: 1, ax: 1 }]);
  });
});
