/**
 * Cached reads (issue #18's bar: "a cached repeat of any read: p99 <= 2 ms at 2,000 req/s"):
 * GET /sessions/{id}, /latest and a small /data (100 samples, about 9 KB of JSON), each read
 * once to fill the cache, then repeated evenly paced at 2,000 requests/s (bench/lib/paced-load.ts:
 * latency from each request's due time, no coordinated omission).
 *
 * Every repeat is a cache hit, but still loads the session's row from PostgreSQL: that is how
 * a read learns the version it may be answered from, and why none is stale after an ack
 * (storage/session-version.ts). So the figures are set beside that lookup's own floor, measured
 * in the same run: the same SELECT the server sends, paced the same way from a pg pool in
 * this process, request to answer. And beside the HTTP floor: GET /health of the same server,
 * paced the same, which answers from memory. A cached read cannot be faster than that on this
 * box, whatever it learns its version from, so it tells whether the bar is in reach here at all.
 */
import pg from 'pg';
import { startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { pacedLoad } from '../lib/paced-load.ts';
import { CpuMeter, type CpuUse, formatCpu, postgresPidsOf, round } from '../lib/procfs.ts';
import { type Context, type Figure, ms, type SectionResult, times } from '../lib/report.ts';
import { Samples, type Summary, summarize } from '../lib/stats.ts';

const rate = 2_000;
const p99BarMs = 2;
const dataSamples = 100;

interface Step {
  name: string;
  latency: Summary;
  achievedRate: number;
  failures: number;
  cpu: CpuUse;
}

/** The session lookup alone, paced like the reads: what every cached read pays first. */
async function pacedLookup(databaseUrl: string, sessionId: string, durationS: number): Promise<Omit<Step, 'name' | 'cpu'>> {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
  const latencies = new Samples();
  let failures = 0;
  const total = rate * durationS;
  const started = performance.now();
  const query = { name: 'bench-find-session', text: 'SELECT * FROM sessions WHERE id = ANY($1::uuid[])', values: [[sessionId]] };
  const pending: Promise<void>[] = [];
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const dueAt = started + (sent / rate) * 1000;
      pending.push(
        pool.query(query).then(
          () => latencies.push(performance.now() - dueAt),
          () => void failures++,
        ),
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  await Promise.all(pending);
  const seconds = (performance.now() - started) / 1000;
  await pool.end();
  return { latency: summarize([latencies.values()]), achievedRate: total / seconds, failures };
}

/** The server's read cache hits and misses, from its /metrics: that the repeats were cache hits. */
async function cacheCounts(baseUrl: string): Promise<string> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const value = (prefix: string) =>
    Number(
      text
        .split('\n')
        .find((line) => line.startsWith(prefix))
        ?.split(' ')
        .at(-1) ?? 0,
    );
  return `${value('wavehouse_read_cache_hits_total{tier="memory"}')} hits, ${value('wavehouse_read_cache_misses_total ')} misses`;
}

export async function readCacheSection(ctx: Context): Promise<SectionResult> {
  const durationS = ctx.quick ? 3 : 10;
  const server = await startWavehouse(ctx.databaseUrl);
  try {
    const session = await createSession(server.baseUrl);
    const samples = Array.from({ length: dataSamples }, (_, i) => ({ seq: i + 1, t: 1_700_000_000_000 + i, ax: i, ay: -i, az: i / 7 }));
    const ingested = await fetch(`${server.baseUrl}/api/v1/sessions/${session.sessionId}/samples`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${session.ingestToken}` },
      body: JSON.stringify({ samples }),
    });
    if (ingested.status !== 200) throw new Error(`ingest answered ${ingested.status}`);
    const base = `${server.baseUrl}/api/v1/sessions/${session.sessionId}`;
    const targets = [
      { name: 'GET /sessions/{id}', url: base },
      { name: 'GET /sessions/{id}/latest', url: `${base}/latest` },
      { name: `GET /sessions/{id}/data (${dataSamples} samples)`, url: `${base}/data` },
    ];
    const meter = () => new CpuMeter({ server: [server.pid], postgres: () => postgresPidsOf(ctx.databaseName), clients: [process.pid] });
    const steps: Step[] = [];
    for (const target of targets) {
      ctx.log(`read-cache: ${target.name} at ${rate} req/s`);
      await pacedLoad({ url: target.url }, rate, 1);
      const cpu = meter().begin();
      const { latencies, achievedRate, failures } = await pacedLoad({ url: target.url }, rate, durationS);
      steps.push({ name: target.name, latency: summarize([latencies]), achievedRate, failures, cpu: cpu.end() });
    }
    const counted = await cacheCounts(server.baseUrl);
    ctx.log(`read-cache: ${counted}`);
    ctx.log('read-cache: the session lookup alone, from a pg pool');
    const lookupCpu = meter().begin();
    const lookup: Step = {
      name: 'floor: the session SELECT alone',
      ...(await pacedLookup(ctx.databaseUrl, session.sessionId, durationS)),
      cpu: lookupCpu.end(),
    };
    ctx.log('read-cache: GET /health, the HTTP floor');
    await pacedLoad({ url: `${server.baseUrl}/health` }, rate, 1);
    const healthCpu = meter().begin();
    const { latencies, achievedRate, failures } = await pacedLoad({ url: `${server.baseUrl}/health` }, rate, durationS);
    const httpFloor: Step = {
      name: 'floor: GET /health, no database',
      latency: summarize([latencies]),
      achievedRate,
      failures,
      cpu: healthCpu.end(),
    };
    const floors = [lookup, httpFloor];
    for (const step of [...steps, ...floors]) {
      ctx.log(
        `  ${step.name}: ${step.achievedRate.toFixed(0)} req/s, p50 ${ms(step.latency.p50)} p99 ${ms(step.latency.p99)}, ` +
          `${step.failures} failures; ${formatCpu(step.cpu)}`,
      );
    }
    const figures: Figure[] = steps.map((s) => ({
      section: 'Read cache',
      figure: `cached repeat of ${s.name} at ${rate} req/s, evenly paced: p50 / p99`,
      value: `${ms(s.latency.p50)} / ${ms(s.latency.p99)}`,
      limit: `session SELECT alone, p99 ${ms(lookup.latency.p99)}; GET /health, p99 ${ms(httpFloor.latency.p99)}`,
      ratio:
        `${times(s.latency.p99 / p99BarMs)} of the bar, ${times(s.latency.p99 / lookup.latency.p99)} of the SELECT, ` +
        `${times(s.latency.p99 / httpFloor.latency.p99)} of /health`,
      bar: `p99 <= ${p99BarMs} ms`,
      pass: s.latency.p99 <= p99BarMs && s.failures === 0 && s.achievedRate >= 0.95 * rate,
      otherCores: s.cpu.otherCores,
    }));
    return {
      figures,
      details: [
        {
          title: `Read cache: cached repeats, evenly paced at ${rate}/s for ${durationS} s each`,
          columns: ['request', 'achieved', 'p50', 'p99', 'max', 'p99 / bar', 'failures', 'CPU cores (server, postgres, client, other)'],
          rows: [...steps, ...floors].map((s) => [
            s.name,
            `${s.achievedRate.toFixed(0)}/s`,
            ms(s.latency.p50),
            ms(s.latency.p99),
            ms(s.latency.max),
            times(s.latency.p99 / p99BarMs),
            s.failures,
            formatCpu(s.cpu),
          ]),
          notes: [
            'Every repeat loads the session row (the version a read may be answered from): a floor row is that SELECT alone.',
            'The other floor is GET /health of the same server: an answer from memory, what no cached read can beat here.',
            `The server's read cache over the three steps and their warm-ups: ${counted}.`,
          ],
        },
      ],
      data: {
        rate,
        durationS,
        steps: [...steps, ...floors].map((s) => ({
          name: s.name,
          achievedRate: Math.round(s.achievedRate),
          p50Ms: round(s.latency.p50, 3),
          p99Ms: round(s.latency.p99, 3),
          maxMs: round(s.latency.max, 2),
          failures: s.failures,
          otherCores: s.cpu.otherCores,
        })),
      },
    };
  } finally {
    await server.stop();
  }
}
