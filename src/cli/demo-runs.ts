/**
 * The two demos as the terminal shows them: each sets its demo up (src/demo/), prints the
 * links to watch it by, and reports what the service answers as it goes. The service itself is
 * demo-command.ts's.
 */
import { findSessions, type NodeStream, startIotDemo } from '../demo/iot-demo.ts';
import { riverNodes } from '../demo/river-nodes.ts';
import { leaderboard, leaderboardText, openStreams, replay } from '../demo/scheduler-demo.ts';
import { ThingSpeakStandIn } from '../demo/thingspeak-stand-in.ts';
import { listConnectors } from '../sdk/connectors.ts';
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

export async function runIot(run: Run & { everyMs: number; pollIntervalS: number; stops: Array<() => Promise<void>> }): Promise<void> {
  const standIn = await ThingSpeakStandIn.start();
  run.stops.push(() => standIn.close());
  run.out(`upstream  ${standIn.baseUrl} (a ThingSpeak stand-in: ${riverNodes.length} river gauges)`);
  const streams = await startIotDemo({ ...run, standIn, nodes: riverNodes });
  run.out('waiting for each connector to create its stream (its first entry)...');
  while (!run.signal.aborted && !(await findSessions(run.baseUrl, run.request, streams))) {
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  for (const stream of streams) {
    if (stream.sessionId !== null) run.out(`viewer    ${viewerLink(run.baseUrl, stream.sessionId)} (${stream.node.name})`);
  }
  every(Math.max(5_000, run.everyMs), run.signal, () => nodeStatus(run, streams));
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
