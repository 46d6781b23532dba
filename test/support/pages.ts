/**
 * The pages in headless Chromium (playwright-core): the browser for a test file, pages that
 * fail their test on script errors, the pages' debug hooks read and waited on, a producer in
 * the test process, and the recorder fed synthetic DeviceMotion events.
 *
 * Needs Chromium at /usr/bin/chromium (or CHROMIUM_PATH): `apt-get install chromium`. Suites
 * are skipped, saying so, only when that file is missing (`skipReason`).
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { after, before, type TestContext } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { type CreatedSession, ingestUrl, RecordingSocket, type Sample } from './clients.ts';
import { eventually } from './eventually.ts';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
export const skipReason = existsSync(chromiumPath)
  ? false
  : `Chromium is not installed at ${chromiumPath} (apt-get install chromium, or set CHROMIUM_PATH)`;
const resultsDir = fileURLToPath(new URL('../../test-results/', import.meta.url));

export interface Plotted {
  count: number;
  firstSeq: number | null;
  lastSeq: number | null;
  gaps: Array<[number, number]>;
  disorder: number;
}

/** One lane of the viewer: its channel, the ranges it shows, its readout, its plot's box on the page. */
export interface LaneView {
  channel: string;
  yMin: number;
  yMax: number;
  xMin: number;
  xMax: number;
  latest: string;
  plotBox: { left: number; top: number; width: number; height: number };
}

export interface ViewerHook {
  readonly status: { session: string; connection: string; mode: string; reconnects: number; received: number; draws: number };
  plotted(): Plotted;
  plottedSample(seq: number): Sample | null;
  dropConnection(): void;
  lanes(): LaneView[];
  /** The time labels as drawn: text, and the tick's x in CSS pixels from the canvas's left edge. */
  timeLabels(): { font: string; canvasWidth: number; labels: Array<{ text: string; x: number }> };
  laneCanvas(index: number): {
    canvas: HTMLCanvasElement;
    bbox: { left: number; top: number; width: number; height: number };
    valToX(value: number): number;
  };
  zoomTo(min: number | null, max?: number): void;
  /** A long recording's reads: the envelope's buckets, or the samples of a zoomed range. */
  envelope(): {
    source: 'aggregate' | 'raw';
    bucketMs: number | null;
    fromT: number;
    toT: number;
    count: number;
    points: number | null;
  } | null;
}

export interface RecorderHook {
  readonly status: {
    state: string;
    connection: string;
    sessionId: string | null;
    captured: number;
    lastCapturedSeq: number;
    sentSeq: number;
    ackedSeq: number;
    dropped: number;
  };
}

declare global {
  interface Window {
    __wavehouseViewer: ViewerHook;
    __wavehouseRecorder: RecorderHook;
  }
}

let browser: Browser;

/** Launches Chromium before the calling file's tests and closes it after them. */
export function useChromium(): void {
  before(launch);
  after(async () => {
    await browser?.close();
  });
}

async function launch(): Promise<void> {
  if (skipReason) return;
  mkdirSync(resultsDir, { recursive: true });
  browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
}

/**
 * A fresh page whose script errors, CSP refusals and failed loads fail the test. Failed
 * WebSocket connects are expected while a test holds the network down; a test names any
 * other console error it expects.
 */
export async function openPage(t: TestContext, expectedErrors: RegExp[] = []): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  t.after(() => context.close());
  const page = await context.newPage();
  failOnPageErrors(t, page, expectedErrors);
  return page;
}

/** Fails the test on the page's script errors and unexpected console errors (see openPage). */
export function failOnPageErrors(t: TestContext, page: Page, expectedErrors: RegExp[] = []): void {
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    const expected = [/^WebSocket connection to .* failed/, ...expectedErrors];
    if (message.type() === 'error' && !expected.some((pattern) => pattern.test(message.text()))) {
      problems.push(`console: ${message.text()}`);
    }
  });
  t.after(() => assert.deepEqual(problems, [], 'the page logged errors'));
}

export async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: `${resultsDir}${name}.png`, fullPage: true });
}

// -- the viewer -------------------------------------------------------------------------

export const viewerStatus = (page: Page) => page.evaluate(() => window.__wavehouseViewer.status);
export const plotted = (page: Page) => page.evaluate(() => window.__wavehouseViewer.plotted());
export const plottedSample = (page: Page, seq: number) => page.evaluate((s) => window.__wavehouseViewer.plottedSample(s), seq);

/** Waits until the plot holds `seq`, then checks it holds no hole; returns what it holds. */
export async function waitForPlotted(page: Page, seq: number, timeoutMs = 10_000): Promise<Plotted> {
  const shown = await eventually(
    async () => {
      const now = await plotted(page);
      if (now.lastSeq === null || now.lastSeq < seq) throw new Error(`plot at seq ${now.lastSeq}, waiting for ${seq}`);
      return now;
    },
    { timeoutMs },
  );
  assertNoHole(shown);
  return shown;
}

export function assertNoHole(shown: Plotted): void {
  assert.deepEqual(shown.gaps, [], 'the plot has gaps');
  assert.equal(shown.disorder, 0, 'the plot has seqs out of order or twice');
  assert.equal(shown.count, shown.lastSeq! - shown.firstSeq! + 1, 'the plot holds each seq from first to last once');
}

export async function waitForViewer(page: Page, expected: Partial<ViewerHook['status']>, timeoutMs = 10_000) {
  return eventually(
    async () => {
      const status = await viewerStatus(page);
      for (const [key, value] of Object.entries(expected)) {
        if (status[key as keyof typeof status] !== value) {
          throw new Error(`viewer ${JSON.stringify(status)}, waiting for ${JSON.stringify(expected)}`);
        }
      }
      return status;
    },
    { timeoutMs },
  );
}

/**
 * A producer in the test process: deterministic samples (values from the seq, `t` one
 * millisecond per seq, ending near now), sent as history in big frames or streamed at 1 kHz.
 */
export class TestProducer {
  readonly socket: RecordingSocket;
  lastSentSeq = 0;
  private readonly t0: number;
  private timer: NodeJS.Timeout | null = null;

  private constructor(url: string, historySamples: number) {
    this.socket = new RecordingSocket(url);
    this.t0 = Date.now() - historySamples + 0.25;
  }

  static async open(t: TestContext, wsUrl: string, session: CreatedSession, historySamples: number): Promise<TestProducer> {
    const producer = new TestProducer(ingestUrl(wsUrl, session.sessionId, session.ingestToken), historySamples);
    t.after(() => producer.close());
    await producer.socket.opened;
    for (let sent = 0; sent < historySamples; sent += 5_000) producer.send(Math.min(5_000, historySamples - sent));
    if (historySamples > 0) await producer.socket.waitForAck(historySamples, 10_000);
    return producer;
  }

  sampleAt(seq: number): Sample {
    return { seq, t: this.t0 + seq, ax: Math.sin(seq / 100) * 2, ay: Math.cos(seq / 70) * 1.5 - 3, az: 9.81 + Math.sin(seq / 37) * 0.5 };
  }

  send(count: number): void {
    const samples = Array.from({ length: count }, (_, i) => this.sampleAt(this.lastSentSeq + 1 + i));
    this.socket.send({ samples });
    this.lastSentSeq += count;
  }

  /** 1,000 samples/s in 50 ms batches, the shape of a fast real sensor. */
  stream(): void {
    this.timer ??= setInterval(() => this.send(50), 50);
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.socket.close();
  }
}

// -- the recorder -----------------------------------------------------------------------

export const recorderStatus = (page: Page) => page.evaluate(() => window.__wavehouseRecorder.status);

export async function waitForRecorder(page: Page, check: (status: RecorderHook['status']) => boolean, what: string, timeoutMs = 10_000) {
  return eventually(
    async () => {
      const status = await recorderStatus(page);
      if (!check(status)) throw new Error(`recorder ${JSON.stringify(status)}, waiting for ${what}`);
      return status;
    },
    { timeoutMs },
  );
}

export type Reading = [number, number, number];

/** Readings whose exact float64 values must come back from storage (0.1 * 3 is 0.30000000000000004). */
export function readings(from: number, count: number): Reading[] {
  return Array.from({ length: count }, (_, k) => {
    const i = from + k;
    return [Math.sin(i) * 9.81, -9.81 + i / 1000, i * 0.1];
  });
}

/** Dispatches devicemotion events as a phone's sensor would, a few at a time. */
export async function dispatchMotion(page: Page, list: Reading[]): Promise<void> {
  await page.evaluate(async (values) => {
    for (let i = 0; i < values.length; i += 1) {
      const [x, y, z] = values[i];
      window.dispatchEvent(new DeviceMotionEvent('devicemotion', { accelerationIncludingGravity: { x, y, z }, interval: 10 }));
      if (i % 10 === 9) await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }, list);
}
