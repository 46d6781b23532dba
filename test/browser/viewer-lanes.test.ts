/**
 * What a user sees first on the viewer page, in headless Chromium: a lane per channel, each
 * ranged on its own data (a 0.05 beat on 9.8 of gravity stays visible), gaps where a nullable
 * session has no reading, time labels that never overlap at any width or span, and a live
 * session's latest value per channel. Lanes are read through the page's debug hook; labels
 * are measured in the page in the font they are drawn in; gaps are read off the canvas.
 *
 * Needs Chromium (test/support/pages.ts); the suite is skipped, saying so, without it.
 */
import assert from 'node:assert/strict';
import { describe, type TestContext, test } from 'node:test';
import type { Page } from 'playwright-core';
import { startApp } from '../support/app.ts';
import { createSession, endSession, type NullableSample, type Sample, storeSamples } from '../support/clients.ts';
import { eventually } from '../support/eventually.ts';
import { openPage, screenshot, skipReason, TestProducer, useChromium, waitForPlotted, waitForViewer } from '../support/pages.ts';

useChromium();

const lanes = (page: Page) => page.evaluate(() => window.__wavehouseViewer.lanes());
/** A reading as the lane's readout shows it: seven significant digits. */
const reading = (value: number) => String(Number(value.toPrecision(7)));

/** An ended session holding `samples`, opened in the viewer once it shows all of them. */
async function openEnded(t: TestContext, body: { channels: string[]; nullable?: boolean }, samples: NullableSample[]) {
  const { baseUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0' });
  const session = await createSession(baseUrl, body);
  await storeSamples(baseUrl, session, samples);
  assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
  const page = await openPage(t);
  await page.goto(`${baseUrl}/view/${session.sessionId}`);
  await waitForViewer(page, { session: 'ended', mode: 'whole', received: samples.length });
  // The page counts samples as they arrive and draws them at its next animation frame: a first
  // page of them may be drawn, all counted, and the rest not drawn yet.
  const lastT = samples.at(-1)!.t;
  await eventually(async () => {
    const shown = await lanes(page);
    assert.equal(shown.length, body.channels.length);
    assert.ok(
      shown.every((lane) => lane.xMax === lastT),
      `drawn to the last sample's t: ${shown.map((lane) => lane.xMax)}`,
    );
  });
  return page;
}

function extentOf(samples: NullableSample[], channel: string): [number, number] {
  const values = samples.map((sample) => sample[channel]).filter((value): value is number => typeof value === 'number');
  return [Math.min(...values), Math.max(...values)];
}

/** Whether the lane's canvas holds a pixel of its trace's colour in the column at time `t`. */
function traceAt(page: Page, laneIndex: number, t: number, rgb: [number, number, number]) {
  return page.evaluate(
    ({ laneIndex, t, rgb }) => {
      const { canvas, bbox, valToX } = window.__wavehouseViewer.laneCanvas(laneIndex);
      const x = Math.round(valToX(t));
      const pixels = canvas.getContext('2d')!.getImageData(x - 1, bbox.top, 3, bbox.height).data;
      for (let i = 0; i < pixels.length; i += 4) {
        const near = Math.abs(pixels[i] - rgb[0]) + Math.abs(pixels[i + 1] - rgb[1]) + Math.abs(pixels[i + 2] - rgb[2]) < 60;
        if (near && pixels[i + 3] > 100) return true;
      }
      return false;
    },
    { laneIndex, t, rgb },
  );
}

/**
 * The time labels under the last lane, measured in the page: each one's box (its widest line,
 * centred on its tick) in CSS pixels from the canvas's left edge.
 */
function labelBoxes(page: Page) {
  return page.evaluate(() => {
    const drawn = window.__wavehouseViewer.timeLabels();
    const context = document.createElement('canvas').getContext('2d')!;
    context.font = drawn.font;
    const boxes = drawn.labels.map(({ text, x }: { text: string; x: number }) => {
      const width = Math.max(...text.split('\n').map((line) => context.measureText(line).width));
      return { text, left: x - width / 2, right: x + width / 2 };
    });
    return { boxes, canvasWidth: drawn.canvasWidth, plotWidth: document.getElementById('plot')!.clientWidth };
  });
}

describe('the viewer page as a user sees it, in Chromium', { skip: skipReason }, () => {
  test('each channel gets a lane ranged on its own data: a 0.05 beat on 9.81 is visible; a null is a gap', async (t) => {
    const t0 = Date.UTC(2025, 2, 5, 9, 30);
    const samples: NullableSample[] = Array.from({ length: 3_000 }, (_, i) => ({
      seq: i + 1,
      t: t0 + i * 2,
      // A stretch without readings in the first channel: a nullable session's gap.
      ax: i >= 1_200 && i < 1_600 ? null : Math.sin(i / 40) * 2,
      ay: 50 + Math.cos(i / 90) * 40,
      scg: 9.81 + Math.sin(i / 25) * 0.05,
    }));
    const page = await openEnded(t, { channels: ['ax', 'ay', 'scg'], nullable: true }, samples);
    const shown = await lanes(page);
    await screenshot(page, 'viewer-lanes');

    assert.deepEqual(
      shown.map((lane) => lane.channel),
      ['ax', 'ay', 'scg'],
      'a lane per channel, in order',
    );
    for (const [i, lane] of shown.entries()) {
      const [min, max] = extentOf(samples, lane.channel);
      assert.ok(lane.yMin <= min && lane.yMax >= max, `${lane.channel}: ${lane.yMin}..${lane.yMax} holds its data ${min}..${max}`);
      const fill = (max - min) / (lane.yMax - lane.yMin);
      assert.ok(fill >= 0.6, `${lane.channel}: its data fill ${fill.toFixed(2)} of the lane's height`);
      assert.deepEqual([lane.xMin, lane.xMax], [t0, t0 + 2 * 2_999], `${lane.channel}: the whole recording`);
      const above = shown[i - 1]?.plotBox;
      if (above !== undefined) {
        assert.ok(lane.plotBox.top >= above.top + above.height, 'lanes are stacked');
        assert.deepEqual([lane.plotBox.left, lane.plotBox.width], [above.left, above.width], 'one time axis: plots line up');
      }
    }
    const lastSample = samples.at(-1)!;
    assert.deepEqual(
      shown.map((lane) => lane.latest),
      [lastSample.ax, lastSample.ay, lastSample.scg].map((value) => reading(value!)),
      'an ended session shows its last values',
    );

    const blue: [number, number, number] = [0x25, 0x63, 0xeb];
    assert.equal(await traceAt(page, 0, t0 + 2 * 1_000, blue), true, 'the trace is drawn where there are readings');
    assert.equal(await traceAt(page, 0, t0 + 2 * 1_400, blue), false, 'and not where the readings are null');
  });

  test('time labels never overlap, at any width and from a second to hours, with the precision of the span', async (t) => {
    const t0 = Date.UTC(2025, 2, 5, 22, 30);
    // Three hours, one sample a second: on an epoch clock (crossing midnight UTC) and on one from 0.
    const samples = (start: number): Sample[] =>
      Array.from({ length: 3 * 3_600 + 1 }, (_, i) => ({ seq: i + 1, t: start + i * 1_000, value: Math.sin(i / 30) }));
    const spans = [1_000, 10_000, 60_000, 600_000, 3_600_000, 3 * 3_600_000];
    for (const start of [t0, 0]) {
      const page = await openEnded(t, { channels: ['value'] }, samples(start));
      for (const width of [420, 800, 1_600]) {
        await page.setViewportSize({ width, height: 700 });
        for (const span of spans) {
          const from = start + 1_234_567 / 3;
          await page.evaluate(([min, max]) => window.__wavehouseViewer.zoomTo(min, max), [from, from + span]);
          await eventually(async () => {
            const [lane] = await lanes(page);
            assert.deepEqual([lane.xMin, lane.xMax], [from, from + span]);
          });
          const { boxes, canvasWidth } = await eventually(async () => {
            const measured = await labelBoxes(page);
            // The lanes follow the page's width (a ResizeObserver): measured once they have.
            assert.equal(measured.canvasWidth, measured.plotWidth);
            return measured;
          });
          const where = `${start === 0 ? 'clock from 0' : 'epoch clock'}, ${width} px, span ${span} ms`;
          assert.ok(boxes.length >= 2, `${where}: at least two labels (${JSON.stringify(boxes)})`);
          assert.ok(boxes[0].left >= 0 && boxes.at(-1)!.right <= canvasWidth, `${where}: labels inside the plot`);
          for (let i = 1; i < boxes.length; i += 1) {
            assert.ok(boxes[i].left - boxes[i - 1].right >= 8, `${where}: "${boxes[i - 1].text}" and "${boxes[i].text}" overlap`);
          }
          const texts = boxes.map((box) => box.text.split('\n')[0]);
          assert.equal(new Set(texts).size, texts.length, `${where}: labels tell their ticks apart (${texts})`);
          if (span <= 1_000) assert.match(texts[0], /\.\d+( s)?$/, `${where}: a second shows fractions of a second`);
          if (span >= 3_600_000) assert.doesNotMatch(texts[0], /\./, `${where}: hours show no fractions of a second`);
        }
      }
      await screenshot(page, `viewer-time-axis-${start === 0 ? 'elapsed' : 'epoch'}`);
    }
  });

  test('a drag zooms every lane to the same range; a double click shows the whole recording again', async (t) => {
    const samples: Sample[] = Array.from({ length: 2_000 }, (_, i) => ({ seq: i + 1, t: i * 5, a: Math.sin(i / 50), b: i }));
    const page = await openEnded(t, { channels: ['a', 'b'] }, samples);
    const { plotBox } = (await lanes(page))[0];
    const y = plotBox.top + plotBox.height / 2;
    await page.mouse.move(plotBox.left + plotBox.width * 0.25, y);
    await page.mouse.down();
    await page.mouse.move(plotBox.left + plotBox.width * 0.5, y, { steps: 5 });
    await page.mouse.up();
    const zoomed = await eventually(async () => {
      const now = await lanes(page);
      assert.ok(now[0].xMax - now[0].xMin < 9_995 / 2, 'zoomed in');
      return now;
    });
    assert.deepEqual([zoomed[1].xMin, zoomed[1].xMax], [zoomed[0].xMin, zoomed[0].xMax], 'both lanes show the same range');
    assert.ok(Math.abs(zoomed[0].xMin - 9_995 * 0.25) < 100 && Math.abs(zoomed[0].xMax - 9_995 * 0.5) < 100, 'the range dragged over');
    // The value scale follows what is visible: b runs from about 500 to 1,000 in that quarter.
    assert.ok(zoomed[1].yMin > 400 && zoomed[1].yMax < 1_100, `b is ranged on what is visible (${zoomed[1].yMin}..${zoomed[1].yMax})`);

    await page.mouse.dblclick(plotBox.left + plotBox.width / 2, y);
    await eventually(async () => {
      for (const lane of await lanes(page)) assert.deepEqual([lane.xMin, lane.xMax], [0, 9_995]);
    });
  });

  test('a live session shows the latest value of each channel, in a lane that does not jitter', async (t) => {
    const { baseUrl, wsUrl } = await startApp(t, { INGEST_MAX_SAMPLES_PER_S: '0' });
    const session = await createSession(baseUrl, { sampleRateHz: 1000 });
    const producer = await TestProducer.open(t, wsUrl, session, 3_000);
    const page = await openPage(t);
    await page.goto(`${baseUrl}/view/${session.sessionId}`);
    await waitForPlotted(page, 3_000);
    const readout = async () => (await lanes(page)).map((lane) => lane.latest);
    const last = producer.sampleAt(3_000);
    await eventually(async () =>
      assert.deepEqual(
        await readout(),
        [last.ax, last.ay, last.az].map((value) => reading(value!)),
      ),
    );

    producer.socket.send({ samples: [{ seq: 3_001, t: last.t + 1, ax: 1.25, ay: -3.5, az: 9.875 }] });
    await eventually(async () => assert.deepEqual(await readout(), ['1.25', '-3.5', '9.875']));
    assert.deepEqual(
      await page.$$eval('.lane-head', (heads) => heads.map((head) => head.textContent)),
      ['axlatest1.25', 'aylatest-3.5', 'azlatest9.875'],
      'each lane is headed by its channel and its latest value',
    );

    // Streaming on: over 60 animation frames the lanes scroll, and each lane's range holds still.
    producer.stream();
    const ranges = await page.evaluate(async () => {
      const seen: string[][] = [];
      for (let frame = 0; frame < 60; frame += 1) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
        seen.push(window.__wavehouseViewer.lanes().map((lane) => `${lane.yMin}..${lane.yMax}`));
      }
      return seen;
    });
    for (let c = 0; c < 3; c += 1) {
      const distinct = new Set(ranges.map((frame) => frame[c]));
      assert.ok(distinct.size <= 2, `lane ${c} changed its range ${distinct.size - 1} times in 60 frames`);
    }
    await screenshot(page, 'viewer-live-lanes');
  });
});
