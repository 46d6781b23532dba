/**
 * The web pages in a real browser: headless Chromium (driven by playwright-core) against the
 * real app on port 0 and a fresh database. The recorder is fed synthetic DeviceMotion events;
 * the viewer is read through its debug hook, which reports what the uPlot instance holds.
 * Network drops are real: the browser reaches the app through a TCP proxy the test cuts.
 *
 * Screenshots land in test-results/ (gitignored) as artefacts of each run.
 *
 * Needs Chromium (test/support/pages.ts); the suite is skipped, saying so, without it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startApp } from '../support/app.ts';
import { createSession, endSession, getData, type Sample } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import {
  assertNoHole,
  dispatchMotion,
  openPage,
  plotted,
  plottedSample,
  type Reading,
  readings,
  recorderStatus,
  screenshot,
  skipReason,
  TestProducer,
  useChromium,
  viewerStatus,
  waitForPlotted,
  waitForRecorder,
  waitForViewer,
} from '../support/pages.ts';
import { startTcpProxy } from '../support/tcp-proxy.ts';

useChromium();

/** Animation frames over `frameCount` frames while the page runs: how many, how far apart, how many plot draws. */
async function measureFrames(page: Page, frameCount: number) {
  return page.evaluate(async (count) => {
    const drawsBefore = window.__wavehouseViewer.status.draws;
    const intervals: number[] = [];
    let last = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
    for (let i = 0; i < count; i += 1) {
      const now = await new Promise<number>((resolve) => requestAnimationFrame(resolve));
      intervals.push(now - last);
      last = now;
    }
    intervals.sort((a, b) => a - b);
    return {
      frames: count,
      draws: window.__wavehouseViewer.status.draws - drawsBefore,
      medianIntervalMs: intervals[Math.floor(count / 2)],
    };
  }, frameCount);
}

/** The plotted points of `seqs` are exactly the samples the producer sent. */
async function assertPlottedValues(page: Page, producer: TestProducer, seqs: number[]): Promise<void> {
  for (const seq of seqs) assert.deepEqual(await plottedSample(page, seq), producer.sampleAt(seq), `plotted sample ${seq}`);
}

function assertStoredReadings(samples: Sample[], expected: Reading[], notBeforeMs: number): void {
  assert.deepEqual(
    samples.map((sample) => sample.seq),
    expected.map((_, i) => i + 1),
    'seqs 1..n, each once, in order',
  );
  assert.deepEqual(
    samples.map(({ ax, ay, az }) => [ax, ay, az]),
    expected,
    'each stored sample holds exactly the reading it came from',
  );
  samples.forEach((sample, i) => {
    assert.ok(sample.t >= notBeforeMs && sample.t <= Date.now(), `t of seq ${sample.seq} is the event's epoch time`);
    if (i > 0) assert.ok(sample.t >= samples[i - 1].t, 't does not go back');
  });
}

describe('the web pages in Chromium', { skip: skipReason }, () => {
  test('the recorder streams devicemotion readings; Stop ends the session with exactly those samples', async (t) => {
    const { baseUrl } = await startApp(t);
    const page = await openPage(t);
    await page.goto(`${baseUrl}/record`);
    const startedAt = Date.now();
    await page.click('#start');
    const { sessionId } = await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    assert.ok(sessionId);
    assert.equal(await page.inputValue('#share-link'), `${baseUrl}/view/${sessionId}`, 'the share link is the absolute viewer URL');

    // Devices without the sensor fire events with null readings: those are not samples.
    await page.evaluate(() => window.dispatchEvent(new DeviceMotionEvent('devicemotion', { interval: 10 })));
    const sent = readings(0, 300);
    await dispatchMotion(page, sent);
    await waitForRecorder(page, (s) => s.ackedSeq === 300, 'ack of seq 300');
    assert.equal(await page.textContent('#acked'), '300');
    await screenshot(page, 'recorder');

    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended' && s.connection === 'closed', 'ended');
    assert.match((await page.textContent('#message')) ?? '', /300 samples stored/);

    const session = (await (await fetch(`${baseUrl}/api/v1/sessions/${sessionId}`)).json()) as Record<string, unknown>;
    assert.equal(session.status, 'ended');
    assert.equal(session.sampleCount, 300);
    assertStoredReadings((await getData(baseUrl, sessionId)).samples, sent, startedAt - 1_000);
  });

  test('the recorder keeps unacked readings through a network drop and resends them: nothing lost, nothing twice', async (t) => {
    const { baseUrl } = await startApp(t);
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(baseUrl).port) });
    t.after(() => proxy.close());
    const pageUrl = `http://127.0.0.1:${proxy.port}`;
    const page = await openPage(t);
    await page.goto(`${pageUrl}/record`);
    const startedAt = Date.now();
    await page.click('#start');
    const { sessionId } = await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    assert.ok(sessionId);

    const sent = readings(0, 450);
    await dispatchMotion(page, sent.slice(0, 150));
    await waitForRecorder(page, (s) => s.ackedSeq === 150, 'ack of seq 150');

    proxy.cut();
    await waitForRecorder(page, (s) => s.connection === 'reconnecting', 'the drop to be noticed');
    await dispatchMotion(page, sent.slice(150, 300));
    const during = await recorderStatus(page);
    assert.equal(during.lastCapturedSeq, 300, 'capture goes on while the network is down');
    assert.equal(during.ackedSeq, 150, 'nothing is acked while the network is down');
    await screenshot(page, 'recorder-reconnecting');
    proxy.restore();

    await dispatchMotion(page, sent.slice(300));
    await waitForRecorder(page, (s) => s.ackedSeq === 450 && s.connection === 'connected', 'ack of seq 450', 20_000);
    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended', 'ended');
    assertStoredReadings((await getData(baseUrl, sessionId)).samples, sent, startedAt - 1_000);
  });

  test('the viewer plots a live session: the recent past and then live, every seq once, the values sent', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0' });
    const session = await createSession(baseUrl, { sampleRateHz: 1000 });
    // 30 s of history at 1 kHz: more than the viewer's 15 s window.
    const producer = await TestProducer.open(t, wsUrl, session, 30_000);
    producer.stream();
    const page = await openPage(t);
    await page.goto(`${baseUrl}/view/${session.sessionId}`);

    const liveSeq = producer.lastSentSeq + 500;
    const shown = await waitForPlotted(page, liveSeq, 15_000);
    assert.ok(shown.firstSeq! >= 30_000 - 15_000, `starts about one window back (at ${shown.firstSeq})`);
    assert.ok(shown.count <= 15_001, `holds at most the 15 s window (${shown.count} samples)`);
    // The window slides at 1 kHz while the test reads it: sample well inside it.
    await assertPlottedValues(page, producer, [shown.firstSeq! + 2_000, 30_000, liveSeq]);
    await waitForViewer(page, { session: 'active', connection: 'connected', mode: 'live' });

    // Smooth at 1 kHz x 3 channels: the plot is redrawn as it scrolls, at most once per
    // animation frame. The frame rate itself is a speed figure, reported, not asserted (it
    // depends on how busy the machine is): 60 a second on an idle one.
    const frames = await measureFrames(page, 120);
    assert.ok(frames.draws <= frames.frames + 1, `${frames.draws} draws in ${frames.frames} frames`);
    assert.ok(frames.draws >= frames.frames / 2, `the plot scrolls between batches (${frames.draws} draws in ${frames.frames} frames)`);
    t.diagnostic(`median frame interval ${frames.medianIntervalMs} ms`);

    const rate = Number.parseFloat((await page.textContent('#rate')) ?? '');
    assert.ok(rate >= 800 && rate <= 1_200, `measured rate ${rate} samples/s is about 1 kHz`);
    assert.equal(
      await page.getAttribute('#downloads a[data-format="csv"]', 'href'),
      `/api/v1/sessions/${session.sessionId}/data?format=csv`,
    );
    assert.notEqual(await page.getAttribute('#downloads a[data-format="csv"]', 'download'), null);
    await screenshot(page, 'viewer-live');
  });

  test('the viewer resumes without a hole after a reload, a dropped socket and a network outage', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0' });
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(baseUrl).port) });
    t.after(() => proxy.close());
    const session = await createSession(baseUrl, { sampleRateHz: 1000 });
    const producer = await TestProducer.open(t, wsUrl, session, 3_000);
    producer.stream();
    const page = await openPage(t);
    await page.goto(`http://127.0.0.1:${proxy.port}/view/${session.sessionId}`);
    await waitForPlotted(page, producer.lastSentSeq);

    await page.reload();
    const afterReload = await waitForPlotted(page, producer.lastSentSeq + 200);
    assert.equal(afterReload.firstSeq, 1, 'the reloaded page shows the recent past again, from the first sample');

    await page.evaluate(() => window.__wavehouseViewer.dropConnection());
    await waitForViewer(page, { reconnects: 1, connection: 'connected' });
    const afterDrop = await waitForPlotted(page, producer.lastSentSeq + 200);
    assert.equal(afterDrop.firstSeq, 1);

    proxy.cut();
    await waitForViewer(page, { connection: 'reconnecting' });
    const cutAt = producer.lastSentSeq;
    // The producer goes on while the viewer is cut off: the outage spans about a second of samples.
    await eventually(() => assert.ok(producer.lastSentSeq >= cutAt + 1_000), { timeoutMs: 5_000 });
    await screenshot(page, 'viewer-reconnecting');
    proxy.restore();
    await waitForViewer(page, { connection: 'connected' }, 15_000);
    const afterOutage = await waitForPlotted(page, producer.lastSentSeq + 200);
    assert.equal(afterOutage.firstSeq, 1);
    await assertPlottedValues(page, producer, [cutAt, cutAt + 1, cutAt + 500, afterOutage.lastSeq!]);
    assert.ok((await viewerStatus(page)).reconnects >= 2);
  });

  test('the viewer of an ended session shows the whole recording, and its downloads', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t);
    const session = await createSession(baseUrl);
    const producer = await TestProducer.open(t, wsUrl, session, 2_500);
    const ended = await endSession(baseUrl, session.sessionId, session.ingestToken);
    assert.equal(ended.body.sampleCount, 2_500);
    producer.close();

    const page = await openPage(t);
    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForViewer(page, { session: 'ended', connection: 'closed', mode: 'whole' });
    const shown = await plotted(page);
    assertNoHole(shown);
    assert.deepEqual([shown.count, shown.firstSeq, shown.lastSeq], [2_500, 1, 2_500], 'every stored sample is plotted');
    await assertPlottedValues(page, producer, [1, 1_234, 2_500]);
    await eventually(async () => assert.equal(await page.textContent('#sample-count'), '2500'));

    const csvHref = await page.getAttribute('#downloads a[data-format="csv"]', 'href');
    const csv = await (await fetch(new URL(csvHref!, baseUrl))).text();
    assert.equal(csv.split('\n').filter(Boolean).length, 1 + 2_500, 'the CSV link serves the header and every sample');
    await screenshot(page, 'viewer-ended');
  });

  test('the viewer says so when there is no such session', async (t) => {
    const { baseUrl } = await startApp(t);
    // The page's GET of the session is answered 404, which Chromium reports on the console.
    const page = await openPage(t, [/status of 404/]);
    const response = await page.goto(`${baseUrl}/view/6f1c8f0e-4a47-4d3f-9d8e-2a3b4c5d6e7f`);
    assert.equal(response?.status(), 200);
    await waitForViewer(page, { session: 'not found', connection: 'closed' });
    assert.match((await page.textContent('#message')) ?? '', /no session/i);
  });

  test('the landing page creates a session and links its recorder and its viewer', async (t) => {
    const { baseUrl } = await startApp(t);
    const page = await openPage(t);
    await page.goto(baseUrl);
    await page.click('#create-session');
    await page.waitForSelector('#session-links:not([hidden])', { timeout: 10_000 });
    const sessionId = (await page.textContent('#session-id')) ?? '';
    assert.equal(await page.getAttribute('#viewer-link', 'href'), `${baseUrl}/view/${sessionId}`);
    const recorderHref = (await page.getAttribute('#recorder-link', 'href')) ?? '';
    assert.match(recorderHref, new RegExp(`^${baseUrl}/record#session=${sessionId}&token=[^&]+$`));
    await screenshot(page, 'landing');

    await page.goto(`${baseUrl}/view/${sessionId}`);
    await waitForViewer(page, { session: 'created', connection: 'connected' });

    // The recorder link records into that same session with its token, which then leaves the address bar.
    await page.goto(recorderHref);
    assert.equal(await page.isVisible('#link-session'), true);
    await page.click('#start');
    await waitForRecorder(page, (s) => s.state === 'recording' && s.connection === 'connected', 'recording');
    assert.equal((await recorderStatus(page)).sessionId, sessionId);
    assert.equal(await page.evaluate(() => location.hash), '');
    await dispatchMotion(page, readings(0, 20));
    await waitForRecorder(page, (s) => s.ackedSeq === 20, 'ack of seq 20');
    await page.click('#stop');
    await waitForRecorder(page, (s) => s.state === 'ended', 'ended');
    assert.equal((await getData(baseUrl, sessionId)).samples.length, 20);
  });
});

describe('the pages over HTTP', () => {
  test('pages are served with a CSP that forbids inline script, and are not in the API document', async (t) => {
    const { baseUrl } = await startApp(t);
    for (const path of ['/', '/record', '/view/6f1c8f0e-4a47-4d3f-9d8e-2a3b4c5d6e7f']) {
      const response = await fetch(`${baseUrl}${path}`);
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get('content-type') ?? '', /^text\/html/, path);
      const csp = response.headers.get('content-security-policy') ?? '';
      assert.match(csp, /script-src 'self'(;|$)/, `${path}: only this origin's script files`);
      assert.doesNotMatch(await response.text(), /<script(?![^>]*\bsrc=)[^>]*>/, `${path}: no inline script`);
    }
    for (const path of ['/assets/js/viewer.js', '/assets/vendor/uplot/uPlot.esm.js', '/assets/vendor/uplot/uPlot.min.css']) {
      assert.equal((await fetch(`${baseUrl}${path}`)).status, 200, path);
    }
    assert.equal((await fetch(`${baseUrl}/assets/vendor/uplot/uPlot.cjs.js`)).status, 404, 'only the two uPlot files are served');

    const document = (await (await fetch(`${baseUrl}/openapi.json`)).json()) as { paths: Record<string, unknown> };
    const pagePaths = Object.keys(document.paths).filter(
      (path) => !path.startsWith('/api/') && !['/health', '/ready', '/metrics'].includes(path),
    );
    assert.deepEqual(pagePaths, [], 'pages and assets are not API');
  });
});
