/**
 * `wavehouse demo scheduler`: each policy's log (scheduler-sim.ts) replayed into its own stream,
 * `scheduler/<policy>`, over HTTP ingest as the simulated time passes, `speed` times faster
 * than the wall clock; the cross-session `GET /aggregate?keyPrefix=scheduler/` is the live
 * leaderboard. Seqs are the order of finishing, so a rerun with the same seed resumes what its
 * streams hold and stores nothing twice; a stream holding another seed's run is refused.
 */
import { readLeaderboard } from '../sdk/connectors.ts';
import { createSession, postSamples, type RequestOptions, requestJson, WavehouseHttpError } from '../sdk/rest.ts';
import type { AccessCredential, Session } from '../sdk/types.ts';
import { metricChannels, type Policy, policies, simulate, type TaskRecord, taskSet } from './scheduler-sim.ts';

export const keyPrefix = 'scheduler/';

export interface SchedulerDemoOptions {
  baseUrl: string;
  /** sessions:write and sessions:read: a key prefix, if any, must admit `scheduler/`. */
  credential: AccessCredential;
  seed: number;
  tasks: number;
  /** Simulated ms per wall-clock ms. */
  speed: number;
  /** Wall-clock ms between pushes. */
  tickMs: number;
  /** Epoch ms of the simulation's start: a sample's t is this plus its finish time. */
  startT: number;
  signal: AbortSignal;
}

export interface SchedulerStream {
  policy: Policy;
  sessionId: string;
  records: readonly TaskRecord[];
  /** Records up to here are stored. */
  sent: number;
}

export interface LeaderboardRow {
  policy: string;
  tasks: number;
  winRate: number | null;
  meanDuration: number | null;
  energy: number | null;
  cost: number | null;
}

const sleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener(
      'abort',
      () => {
        clearTimeout(timer);
        resolve();
      },
      { once: true },
    );
  });

/** The stream of `policy`: created, or the one an earlier run with the same seed left. */
async function openStream(options: SchedulerDemoOptions, policy: Policy): Promise<SchedulerStream> {
  const records = simulate(policy, taskSet(options.seed, options.tasks));
  const key = `${keyPrefix}${policy}`;
  const request: RequestOptions = { credential: options.credential, signal: options.signal };
  const metadata = { policy, seed: options.seed, tasks: options.tasks };
  try {
    const created = await createSession(options.baseUrl, { key, channels: [...metricChannels], metadata }, request);
    return { policy, sessionId: created.sessionId, records, sent: 0 };
  } catch (error) {
    if (!(error instanceof WavehouseHttpError && error.code === 'key_taken')) throw error;
  }
  const url = `${options.baseUrl}/api/v1/sessions?keyPrefix=${encodeURIComponent(key)}&limit=10`;
  const { sessions } = await requestJson<{ sessions: Session[] }>(url, { method: 'GET' }, 200, request);
  const session = sessions.find((s) => s.key === key);
  const held = session?.metadata as Record<string, unknown> | undefined;
  if (session === undefined || held?.seed !== options.seed || held?.tasks !== options.tasks) {
    throw new Error(
      `${key} holds another run (seed ${String(held?.seed)}, ${String(held?.tasks)} tasks): use that seed, or a fresh database`,
    );
  }
  return { policy, sessionId: session.sessionId, records, sent: session.lastSeq ?? 0 };
}

export function openStreams(options: SchedulerDemoOptions): Promise<SchedulerStream[]> {
  return Promise.all(policies.map((policy) => openStream(options, policy)));
}

/** Sends what has finished by `simulatedMs`; resolves once it is committed. */
async function push(options: SchedulerDemoOptions, stream: SchedulerStream, simulatedMs: number): Promise<void> {
  let end = stream.sent;
  while (end < stream.records.length && stream.records[end].finishMs <= simulatedMs) end++;
  if (end === stream.sent) return;
  const samples = stream.records.slice(stream.sent, end).map(({ seq, finishMs, duration, energy, cost, win }) => ({
    seq,
    t: options.startT + finishMs,
    duration,
    energy,
    cost,
    win,
  }));
  await postSamples(options.baseUrl, stream.sessionId, samples, { credential: options.credential, signal: options.signal });
  stream.sent = end;
}

/** Replays every stream until it is all stored or the signal aborts; `onTick` after each round. */
export async function replay(options: SchedulerDemoOptions, streams: SchedulerStream[], onTick: () => Promise<void>): Promise<void> {
  const startedAt = Date.now();
  const resumedMs = Math.min(...streams.map((s) => (s.sent === 0 ? 0 : s.records[s.sent - 1].finishMs)));
  while (!options.signal.aborted) {
    const simulatedMs = resumedMs + (Date.now() - startedAt) * options.speed;
    await Promise.all(streams.map((stream) => push(options, stream, simulatedMs)));
    await onTick();
    if (streams.every((s) => s.sent === s.records.length)) return;
    await sleep(options.tickMs, options.signal);
  }
}

/** The leaderboard as the server answers it: one read per channel, rows by policy, best win rate first. */
export async function leaderboard(baseUrl: string, options: RequestOptions): Promise<LeaderboardRow[]> {
  const read = (channel: string, fn: string) => readLeaderboard(baseUrl, { keyPrefix, channel, fn: [fn], limit: 100 }, options);
  const [win, duration, energy, cost] = await Promise.all([
    read('win', 'avg'),
    read('duration', 'avg'),
    read('energy', 'sum'),
    read('cost', 'sum'),
  ]);
  const value = (board: typeof win, key: string, fn: string) => board.rows.find((row) => row.key === key)?.values[fn] ?? null;
  return win.rows.map((row) => ({
    policy: row.key.slice(keyPrefix.length),
    tasks: row.count,
    winRate: row.values.avg,
    meanDuration: value(duration, row.key, 'avg'),
    energy: value(energy, row.key, 'sum'),
    cost: value(cost, row.key, 'sum'),
  }));
}

/** The leaderboard as a terminal table. */
export function leaderboardText(rows: readonly LeaderboardRow[]): string {
  const fixed = (value: number | null, digits: number) => (value === null ? '-' : value.toFixed(digits));
  const lines = rows.map((row) =>
    [
      row.policy.padEnd(8),
      String(row.tasks).padStart(6),
      (row.winRate === null ? '-' : `${(row.winRate * 100).toFixed(1)}%`).padStart(9),
      fixed(row.meanDuration, 0).padStart(12),
      fixed(row.energy === null ? null : row.energy / 1_000, 1).padStart(11),
      fixed(row.cost, 0).padStart(12),
    ].join(' '),
  );
  return [
    [
      'policy'.padEnd(8),
      'tasks'.padStart(6),
      'on time'.padStart(9),
      'mean ms'.padStart(12),
      'energy J'.padStart(11),
      'cost'.padStart(12),
    ].join(' '),
    ...lines,
  ].join('\n');
}
