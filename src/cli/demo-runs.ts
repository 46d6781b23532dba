/**
 * The demos as the terminal shows them: each sets its demo up (src/demo/), prints the
 * links to watch it by, and reports what the service answers as it goes. The service itself is
 * demo-command.ts's.
 */
import { randomBytes } from 'node:crypto';
import { findSessions } from '../demo/demo-connectors.ts';
import { type NodeStream, startIotDemo } from '../demo/iot-demo.ts';
import { hourlyOhlc, type SymbolStream, startPricesDemo } from '../demo/prices-demo.ts';
import { riverNodes } from '../demo/river-nodes.ts';
import { leaderboard, leaderboardText, openStreams, replay } from '../demo/scheduler-demo.ts';
import { ThingSpeakStandIn } from '../demo/thingspeak-stand-in.ts';
import { standInSymbols, TwelveDataStandIn } from '../demo/twelvedata-stand-in.ts';
import { getConnector, listConnectors } from '../sdk/connectors.ts';
import { apiUrl, type RequestOptions, requestJson } from '../sdk/rest.ts';
import type { Sample } from '../sdk/types.ts';

interface Run {
  baseUrl: string;
  request: RequestOptions;
  out: (line: string) => void;
  signal: AbortSignal;
}

const every = (ms: number, signal: AbortSignal, work: () => Promise<void>) => {
  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    work()
      .catch(() => undefined)
      .finally(() => {
        running = false;
      });
  }, ms);
  signal.addEventListener('abort', () => clearInterval(timer), { once: true });
};

const viewerLink = (baseUrl: string, sessionId: string) => `${baseUrl}/view/${sessionId}`;

/** One line per node: its connector's state and its latest stored sample. */
async function nodeStatus(run: Run, streams: NodeStream[]): Promise<void> {
  const connectors = new Map((await listConnectors(run.baseUrl, run.request)).map((c) => [c.id, c]));
  for (const stream of streams) {
    const connector = connectors.get(stream.connectorId);
    if (stream.sessionId === null || connector === undefined) continue;
    const latest = await requestJson<{ sample: Sample | null }>(
      apiUrl(run.baseUrl, `/sessions/${stream.sessionId}/latest`),
      { method: 'GET' },
      200,
      run.request,
    );
    const s = latest.sample;
    const reading = s === null ? 'no entry yet' : `entry ${s.seq}: level ${s.Water_Level_cm} cm, flow ${s.Flow_L_min} L/min`;
    run.out(`${stream.node.name.padEnd(18)} ${connector.state.padEnd(8)} ${reading}`);
  }
}

type Stops = Array<() => Promise<void>>;

/** Waits for the connectors' first polls to create the streams, then prints each stream's viewer link. */
async function printViewerLinks(run: Run, streams: Array<SymbolStream | NodeStream>, what: string): Promise<void> {
  run.out(`waiting for the connectors to create each stream (its first ${what})...`);
  while (!run.signal.aborted && !(await findSessions(run.baseUrl, run.request, streams))) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const stream of streams) {
    const name = 'node' in stream ? stream.node.name : stream.symbol;
    if (stream.sessionId !== null) run.out(`viewer    ${viewerLink(run.baseUrl, stream.sessionId)} (${name})`);
  }
}

export async function runIot(run: Run & { everyMs: number; pollIntervalS: number; stops: Stops }): Promise<void> {
  const standIn = await ThingSpeakStandIn.start();
  run.stops.push(() => standIn.close());
  run.out(`upstream  ${standIn.baseUrl} (a ThingSpeak stand-in: ${riverNodes.length} river gauges)`);
  const streams = await startIotDemo({ ...run, standIn, nodes: riverNodes });
  await printViewerLinks(run, streams, 'entry');
  every(Math.max(5_000, run.everyMs), run.signal, () => nodeStatus(run, streams));
}

const price = (value: number | null) => (value === null ? '-' : value.toPrecision(7));

/** The connector's state, then each symbol's last hourly OHLC buckets. */
async function pricesStatus(run: Run, streams: SymbolStream[]): Promise<void> {
  const connector = await getConnector(run.baseUrl, streams[0].connectorId, run.request);
  run.out(`\nconnector ${connector.state}${connector.lastError === null ? '' : ` (last error: ${connector.lastError})`}`);
  for (const stream of streams) {
    if (stream.sessionId === null) continue;
    for (const bucket of (await hourlyOhlc(run.baseUrl, run.request, stream.sessionId)).slice(-3)) {
      const hour = new Date(bucket.t).toISOString().slice(0, 16).replace('T', ' ');
      const ohlc = [bucket.open, bucket.high, bucket.low, bucket.close].map(price).join(' ');
      run.out(`${stream.symbol.padEnd(8)} ${hour} UTC  O H L C ${ohlc}  (${bucket.bars} bars)`);
    }
  }
}

export async function runPrices(run: Run & { pollIntervalS: number; creditErrorEveryMs: number; stops: Stops }): Promise<void> {
  // The stand-in's key is the demo's own, made anew each run: no real Twelve Data key is involved.
  const apiKey = randomBytes(16).toString('hex');
  const standIn = await TwelveDataStandIn.start({ apiKey });
  run.stops.push(() => standIn.close());
  const symbols = standInSymbols.map((s) => s.symbol);
  run.out(`upstream  ${standIn.baseUrl} (a Twelve Data stand-in: 1min bars of ${symbols.join(', ')})`);
  const streams = await startPricesDemo({ ...run, standIn, apiKey, symbols, creditsPerMinute: 60, creditsPerDay: 100_000 });
  await printViewerLinks(run, streams, 'bars');
  run.out(
    `OHLC      GET ${apiUrl(run.baseUrl, '/sessions/{id}/aggregate?bucketMs=3600000&fn=first,max,min,last&channels=open,high,low,close')}`,
  );
  // A credit error now and then, as Twelve Data answers one: the connector fails that poll and reads on the next minute.
  // One at a time: while the connector is paused, they would pile up for its next polls.
  every(run.creditErrorEveryMs, run.signal, async () => {
    if (standIn.pendingFaults === 0) standIn.fail('error429');
  });
  every(15_000, run.signal, () => pricesStatus(run, streams));
}

export async function runScheduler(run: Run & { seed: number; tasks: number; speed: number }): Promise<void> {
  const options = { ...run, credential: run.request.credential!, tickMs: 200, startT: Date.now() };
  const streams = await openStreams(options);
  for (const stream of streams) run.out(`viewer    ${viewerLink(run.baseUrl, stream.sessionId)} (scheduler/${stream.policy})`);
  run.out(`leaderboard: ${run.baseUrl}/ (signed in), or GET ${apiUrl(run.baseUrl, '/aggregate?keyPrefix=scheduler/&channel=win')}`);
  let shownAt = 0;
  let shown = '';
  const show = async (force: boolean) => {
    if (!force && Date.now() - shownAt < 2_000) return;
    shownAt = Date.now();
    const text = leaderboardText(await leaderboard(run.baseUrl, run.request));
    if (text !== shown) run.out(`\n${text}`);
    shown = text;
  };
  await replay(options, streams, () => show(false));
  if (!run.signal.aborted) {
    await show(true);
    run.out(`\nall ${run.tasks} tasks of seed ${run.seed} stored for each policy.`);
  }
}
