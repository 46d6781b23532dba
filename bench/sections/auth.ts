/**
 * What access control adds to a REST read: GET /api/v1/sessions/{id} at a fixed 2,000
 * requests/s, on a server in open mode (no credential) and on one in private mode, with an
 * API key and with an access token (a JWT) as `Authorization: Bearer`. The bar (issue #17):
 * private mode adds <= 0.2 ms at p50 and <= 1 ms at p99. On the hot path a key is a SHA-256
 * and a cache lookup, a token a cache lookup of its verified signature (authenticator.ts);
 * the caches are warmed before the measurement, as they are on a server in use.
 *
 * The load is open-loop and evenly paced (lib/paced-load.ts): request k is due at k / rate,
 * latency is measured from its due time, so a stall is charged to every request it delayed.
 * The two servers run side by side on the same database; the three kinds of request take
 * turns, a few seconds each, over several rounds (each round in another order), so that the
 * shared box's drift from minute to minute falls on all three alike. Each kind's percentiles
 * are over all its rounds; "added" is private mode's percentile minus open mode's.
 */
import { type ServerHandle, startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { type PacedRequest, pacedLoad } from '../lib/paced-load.ts';
import { bearer, privateModeEnv, writerCredentials } from '../lib/private-mode.ts';
import { CpuMeter, type CpuUse, postgresPidsOf, round } from '../lib/procfs.ts';
import { type Context, type Figure, ms, otherLoad, pacedCells, type SectionResult } from '../lib/report.ts';
import { type Summary, summarize } from '../lib/stats.ts';

const rate = 2_000;
const bar = { p50Ms: 0.2, p99Ms: 1 };

interface Kind {
  name: string;
  server: ServerHandle;
  request: PacedRequest;
}

interface Run {
  round: number;
  latency: Summary;
  achievedRate: number;
  failures: number;
  cpu: CpuUse;
}

interface Measured {
  kind: Kind;
  runs: Run[];
  latency: Summary;
}

const signed = (value: number) => `${value >= 0 ? '+' : '-'}${ms(Math.abs(value))}`;

async function measure(ctx: Context, kinds: readonly Kind[], rounds: number, durationS: number): Promise<Measured[]> {
  const runs = kinds.map(() => ({ runs: [] as Run[], latencies: [] as Float64Array[] }));
  for (let round = 0; round < rounds; round++) {
    for (let turn = 0; turn < kinds.length; turn++) {
      const index = (turn + round) % kinds.length;
      const kind = kinds[index];
      const meter = new CpuMeter({
        server: [kind.server.pid],
        postgres: () => postgresPidsOf(ctx.databaseName),
        clients: [process.pid],
      }).begin();
      const result = await pacedLoad(kind.request, rate, durationS);
      const cpu = meter.end();
      const latency = summarize([result.latencies]);
      runs[index].runs.push({ round, latency, achievedRate: result.achievedRate, failures: result.failures, cpu });
      runs[index].latencies.push(result.latencies);
      ctx.log(`  round ${round + 1}, ${kind.name}: p50 ${ms(latency.p50)} p99 ${ms(latency.p99)}, ${result.failures} failed`);
    }
  }
  return kinds.map((kind, i) => ({ kind, runs: runs[i].runs, latency: summarize(runs[i].latencies) }));
}

export async function authSection(ctx: Context): Promise<SectionResult> {
  const rounds = ctx.quick ? 1 : 5;
  const durationS = 2;
  const open = await startWavehouse(ctx.databaseUrl);
  const closed = await startWavehouse(ctx.databaseUrl, privateModeEnv()).catch(async (error: unknown) => {
    await open.stop();
    throw error;
  });
  try {
    const credentials = await writerCredentials(ctx.databaseUrl, closed.baseUrl);
    const openSession = await createSession(open.baseUrl);
    const privateSession = await createSession(closed.baseUrl, bearer(credentials.key));
    const privateUrl = `${closed.baseUrl}/api/v1/sessions/${privateSession.sessionId}`;
    const kinds: Kind[] = [
      { name: 'open mode, no credential', server: open, request: { url: `${open.baseUrl}/api/v1/sessions/${openSession.sessionId}` } },
      { name: 'private mode, API key', server: closed, request: { url: privateUrl, headers: bearer(credentials.key) } },
      { name: 'private mode, access token', server: closed, request: { url: privateUrl, headers: bearer(credentials.accessToken) } },
    ];
    ctx.log(`auth: GET /api/v1/sessions/{id} at ${rate} req/s, ${rounds} rounds of ${durationS} s per kind`);
    for (const kind of kinds) {
      const warmUp = await pacedLoad(kind.request, rate, 1);
      if (warmUp.failures > 0) throw new Error(`${kind.name}: ${warmUp.failures} requests failed in the warm-up`);
    }
    const [base, ...credentialed] = await measure(ctx, kinds, rounds, durationS);
    const failuresOf = (m: Measured) => m.runs.reduce((sum, run) => sum + run.failures, 0);
    const reachedRate = (m: Measured) => m.runs.every((run) => run.achievedRate >= 0.95 * rate);
    const figures: Figure[] = credentialed.map((m) => {
      const addedP50 = m.latency.p50 - base.latency.p50;
      const addedP99 = m.latency.p99 - base.latency.p99;
      return {
        section: 'auth',
        figure: `GET /api/v1/sessions/{id} at ${rate} req/s, ${m.kind.name}: added p50 / p99`,
        value: `${signed(addedP50)} / ${signed(addedP99)}`,
        limit: `open mode ${ms(base.latency.p50)} / ${ms(base.latency.p99)}`,
        bar: `<= ${bar.p50Ms} ms / <= ${bar.p99Ms} ms added, no failures`,
        // A base that fell behind the rate measured a queue, not a request: no verdict can rest on it.
        pass: addedP50 <= bar.p50Ms && addedP99 <= bar.p99Ms && [m, base].every((kind) => failuresOf(kind) === 0 && reachedRate(kind)),
        otherCores: otherLoad(...m.runs.map((run) => run.cpu), ...base.runs.map((run) => run.cpu)),
      };
    });
    const all = [base, ...credentialed];
    return {
      figures,
      details: [
        {
          title: `auth: GET /api/v1/sessions/{id}, paced at ${rate}/s, latency from each request's due time, ${durationS} s per turn`,
          columns: ['request', 'round', 'achieved', 'p50', 'p99', 'max', 'failures', 'CPU cores (server, postgres, client, other)'],
          rows: [
            ...all.flatMap((m) => m.runs.map((run) => [m.kind.name, run.round + 1, ...pacedCells(run)])),
            ...all.map((m) => [m.kind.name, 'all', '', ms(m.latency.p50), ms(m.latency.p99), ms(m.latency.max), failuresOf(m), '']),
          ],
        },
      ],
      data: {
        rate,
        rounds,
        durationS,
        kinds: all.map((m) => ({
          name: m.kind.name,
          p50Ms: round(m.latency.p50, 3),
          p99Ms: round(m.latency.p99, 3),
          maxMs: round(m.latency.max, 2),
          addedP50Ms: round(m.latency.p50 - base.latency.p50, 3),
          addedP99Ms: round(m.latency.p99 - base.latency.p99, 3),
          failures: failuresOf(m),
          runs: m.runs.map((run) => ({
            round: run.round + 1,
            achievedRate: Math.round(run.achievedRate),
            p50Ms: round(run.latency.p50, 3),
            p99Ms: round(run.latency.p99, 3),
            cpuCores: run.cpu.cores,
            otherCores: run.cpu.otherCores,
          })),
        })),
      },
    };
  } finally {
    await Promise.all([open.stop(), closed.stop()]);
  }
}
