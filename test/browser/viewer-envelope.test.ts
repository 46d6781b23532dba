/**
 * A long recording on the viewer page, in headless Chromium: three hours of samples, more
 * than the page replays, drawn through GET /sessions/{id}/aggregate as a min/max band with
 * the first/last line, re-read for each zoom, and read as the samples themselves once the
 * zoomed range holds few enough.
 *
 * Runs against the real aggregate endpoint.
 *
 * Needs Chromium (test/support/pages.ts); the suite is skipped, saying so, without it.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startApp } from '../support/app.ts';
import { createSession, endSession, type NullableSample, storeSamples } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { openPage, screenshot, skipReason, useChromium, waitForViewer } from '../support/pages.ts';

useChromium();

const envelopeOf = (page: Page) => page.evaluate(() => window.__wavehouseViewer.envelope());
const lanes = (page: Page) => page.evaluate(() => window.__wavehouseViewer.lanes());

/** Whether the lane's plot area holds pixels of the band's (faint) colour at time `t`. */
function bandAt(page: Page, laneIndex: number, t: number, rgb: [number, number, number]) {
  return page.evaluate(
    ({ laneIndex, t, rgb }) => {
      const { canvas, bbox, valToX } = window.__wavehouseViewer.laneCanvas(laneIndex);
      const pixels = canvas.getContext('2d')!.getImageData(Math.round(valToX(t)), bbox.top, 1, bbox.height).data;
      let count = 0;
      for (let i = 0; i < pixels.length; i += 4) {
        const near = Math.abs(pixels[i] - rgb[0]) + Math.abs(pixels[i + 1] - rgb[1]) + Math.abs(pixels[i + 2] - rgb[2]) < 60;
        if (near && pixels[i + 3] > 30) count += 1;
      }
      return count;
    },
    { laneIndex, t, rgb },
  );
}

describe('the viewer of a long recording, in Chromium', { skip: skipReason }, () => {
  test('three hours plot as an envelope that shows a one-sample spike; zooming re-reads it, then reads samples', async (t) => {
    const { baseUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0' });
    const t0 = Date.UTC(2025, 2, 5, 8);
    const hz = 20;
    const count = 3 * 3_600 * hz;
    const spikeSeq = 100_001;
    // A 0.05 beat on gravity, and in the other channel one sample far above the rest.
    const samples: NullableSample[] = Array.from({ length: count }, (_, i) => ({
      seq: i + 1,
      t: t0 + (i * 1_000) / hz,
      scg: 9.81 + Math.sin(i / 7) * 0.05,
      ax: i + 1 === spikeSeq ? 50 : Math.sin(i / 300),
    }));
    const session = await createSession(baseUrl, { channels: ['scg', 'ax'] });
    await storeSamples(baseUrl, session, samples, 10_000);
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);

    const page = await openPage(t);
    const reads: URL[] = [];
    page.on('request', (request) => {
      const url = new URL(request.url());
      if (/\/(aggregate|data)$/.test(url.pathname)) reads.push(url);
    });
    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForViewer(page, { session: 'ended', mode: 'envelope' });
    const whole = await eventually(async () => (await envelopeOf(page)) ?? assert.fail('no envelope yet'), { timeoutMs: 15_000 });
    await screenshot(page, 'viewer-envelope');

    assert.equal(whole.source, 'aggregate');
    assert.equal(whole.count, count, 'the buckets hold every sample');
    const [first] = reads;
    assert.equal(first.pathname, `/api/v1/sessions/${session.sessionId}/aggregate`);
    assert.deepEqual(first.searchParams.get('fn')?.split(',').sort(), ['first', 'last', 'max', 'min']);
    assert.equal(Number(first.searchParams.get('points')), whole.points);
    assert.ok(whole.points! >= 300 && whole.points! <= 2_000, `about one bucket per pixel (${whole.points})`);
    assert.ok(whole.bucketMs! >= (3 * 3_600_000) / whole.points!, `buckets of ${whole.bucketMs} ms`);
    assert.equal(reads.filter((url) => url.pathname.endsWith('/data')).length, 0, 'no samples read for the whole recording');

    const [scg, ax] = await lanes(page);
    assert.ok(scg.yMin <= 9.76 && scg.yMax >= 9.86 && scg.yMax - scg.yMin < 0.2, `the beat fills its lane (${scg.yMin}..${scg.yMax})`);
    assert.ok(ax.yMax >= 50, `the one-sample spike is in the envelope (ax up to ${ax.yMax})`);
    const spikeT = samples[spikeSeq - 1].t;
    const red: [number, number, number] = [0xdc, 0x26, 0x26];
    assert.ok((await bandAt(page, 1, spikeT, red)) > 0, 'the band reaches the spike');
    assert.deepEqual(
      [scg.latest, ax.latest],
      [samples.at(-1)!.scg, samples.at(-1)!.ax].map((value) => String(Number(value!.toPrecision(7)))),
      'the last values',
    );

    // Two hours hold more samples than the page reads raw: a new envelope of that range.
    const twoHours: [number, number] = [t0 + 600_000, t0 + 600_000 + 2 * 3_600_000];
    await page.evaluate(([min, max]) => window.__wavehouseViewer.zoomTo(min, max), twoHours);
    const zoomed = await eventually(async () => {
      const now = await envelopeOf(page);
      assert.equal(now?.fromT, twoHours[0]);
      return now!;
    });
    assert.equal(zoomed.source, 'aggregate');
    assert.ok(zoomed.bucketMs! < whole.bucketMs!, `finer buckets (${zoomed.bucketMs} ms, from ${whole.bucketMs})`);
    const again = reads.at(-1)!;
    assert.deepEqual([Number(again.searchParams.get('fromT')), Number(again.searchParams.get('toT'))], twoHours);
    await eventually(async () => {
      for (const lane of await lanes(page)) assert.deepEqual([lane.xMin, lane.xMax], twoHours);
    });

    // A minute holds 1,200 samples: read as samples.
    const minute: [number, number] = [t0 + 3_600_000, t0 + 3_660_000];
    await page.evaluate(([min, max]) => window.__wavehouseViewer.zoomTo(min, max), minute);
    const raw = await eventually(async () => {
      const now = await envelopeOf(page);
      assert.equal(now?.source, 'raw');
      return now!;
    });
    assert.ok(raw.count >= 60 * hz && raw.count <= 60 * hz + 1, `the minute's samples (${raw.count})`);
    assert.match(reads.at(-1)!.pathname, /\/data$/);
    await screenshot(page, 'viewer-envelope-samples');

    await page.evaluate(() => window.__wavehouseViewer.zoomTo(null));
    // The envelope is back at once (the first one is kept); the lanes follow on their next draw.
    await eventually(async () => {
      assert.equal((await envelopeOf(page))?.bucketMs, whole.bucketMs);
      for (const lane of await lanes(page)) assert.deepEqual([lane.xMin, lane.xMax], [t0, samples.at(-1)!.t]);
    });
  });
});
