/**
 * HTTP ingest: 4 clients, each with a session of its own (a session takes one request at a
 * time), post 1,000-sample JSON bodies (`{"samples":[...]}`, 3 channels) back to back from this
 * process over keep-alive connections. A 200 means committed, so persisted = the samples of
 * the 200s that arrived within the 5 s window (after 1 s of warm-up), per second; latency is
 * the request's round trip. Every acked sample is then checked to be stored (each session's
 * sampleCount). Bodies are built per request from pre-formatted samples, only the seqs
 * written anew. No limit is measured beside it: the bar is absolute, and the ingest (JSON)
 * section's socket figure is the one to compare with.
 */
import { startWavehouse } from '../lib/children.ts';
import { type CreatedSession, createSession } from '../lib/db.ts';
import { CpuMeter, formatCpu, postgresPidsOf } from '../lib/procfs.ts';
import { type Context, mps, ms, type SectionResult } from '../lib/report.ts';
import { Samples, sleep, summarize, wallMs } from '../lib/stats.ts';

const clients = 4;
const samplesPerBody = 1_000;
const barSamplesPerS = 500_000;

/** One sample's text after its seq: `,"t":...,"ax":...,"ay":...,"az":...}`, for 1,000 samples. */
const tails = Array.from({ length: samplesPerBody }, (_, i) => {
  const value = (c: number) => Math.sin(i / 10 + c) * 9.81;
  return `,"t":${1_700_000_000_000 + i},"ax":${value(0)},"ay":${value(1)},"az":${value(2)}}`;
});

function bodyFrom(firstSeq: number): string {
  let text = '{"samples":[';
  for (let i = 0; i < samplesPerBody; i++) text += `${i === 0 ? '' : ','}{"seq":${firstSeq + i}${tails[i]}`;
  return `${text}]}`;
}

interface ClientRun {
  acked: number;
  inWindow: number;
  failures: number;
  latencies: Float64Array;
}

/** Posts bodies back to back until `untilMs`; counts what was acked within [fromMs, untilMs]. */
async function runClient(baseUrl: string, session: CreatedSession, fromMs: number, untilMs: number): Promise<ClientRun> {
  const url = `${baseUrl}/api/v1/sessions/${session.sessionId}/samples`;
  const headers = { 'content-type': 'application/json', authorization: `Bearer ${session.ingestToken}` };
  const latencies = new Samples();
  let nextSeq = 1;
  let acked = 0;
  let inWindow = 0;
  let failures = 0;
  while (wallMs() < untilMs) {
    const body = bodyFrom(nextSeq);
    const sentAt = wallMs();
    const response = await fetch(url, { method: 'POST', headers, body });
    const receipt = (await response.json()) as { accepted?: number };
    const doneAt = wallMs();
    if (response.status !== 200) {
      failures++;
      continue;
    }
    nextSeq += samplesPerBody;
    acked += receipt.accepted ?? 0;
    if (sentAt >= fromMs && doneAt <= untilMs) {
      inWindow += receipt.accepted ?? 0;
      latencies.push(doneAt - sentAt);
    }
  }
  return { acked, inWindow, failures, latencies: latencies.values() };
}

export async function httpIngestSection(ctx: Context): Promise<SectionResult> {
  const warmupMs = ctx.quick ? 300 : 1_000;
  const windowMs = ctx.quick ? 1_000 : 5_000;
  ctx.log(`http-ingest: ${clients} clients, ${samplesPerBody}-sample JSON bodies, ${windowMs / 1000} s`);
  const server = await startWavehouse(ctx.databaseUrl);
  try {
    const sessions = await Promise.all(Array.from({ length: clients }, () => createSession(server.baseUrl)));
    const startAt = wallMs();
    const fromMs = startAt + warmupMs;
    const untilMs = fromMs + windowMs;
    const meter = new CpuMeter({ server: [server.pid], postgres: () => postgresPidsOf(ctx.databaseName), clients: [process.pid] });
    const metering = sleep(warmupMs).then(() => meter.begin());
    const runs = await Promise.all(sessions.map((session) => runClient(server.baseUrl, session, fromMs, untilMs)));
    await metering;
    const cpu = meter.end();
    const stored = await Promise.all(
      sessions.map(async (session) => {
        const record = (await (await fetch(`${server.baseUrl}/api/v1/sessions/${session.sessionId}`)).json()) as { sampleCount: number };
        return record.sampleCount;
      }),
    );
    const acked = runs.reduce((sum, run) => sum + run.acked, 0);
    const allStored = stored.every((count, i) => count === runs[i].acked);
    const rate = runs.reduce((sum, run) => sum + run.inWindow, 0) / (windowMs / 1000);
    const failures = runs.reduce((sum, run) => sum + run.failures, 0);
    const latency = summarize(runs.map((run) => run.latencies));
    ctx.log(`  ${mps(rate)} persisted, p50 ${ms(latency.p50)}, p99 ${ms(latency.p99)}, ${failures} refused, ${formatCpu(cpu)}`);
    return {
      figures: [
        {
          section: 'http-ingest',
          figure: `HTTP ingest, ${samplesPerBody}-sample JSON bodies, ${clients} clients: persisted, acked after commit`,
          value: mps(rate),
          bar: `>= ${mps(barSamplesPerS)}`,
          pass: rate >= barSamplesPerS && allStored && failures === 0,
          otherCores: cpu.otherCores,
        },
      ],
      details: [
        {
          title: 'http-ingest: requests answered 200 within the window',
          columns: ['persisted', 'requests', 'p50', 'p99', 'max', 'refused', 'every acked sample stored', 'cpu'],
          rows: [
            [
              mps(rate),
              latency.count,
              ms(latency.p50),
              ms(latency.p99),
              ms(latency.max),
              failures,
              allStored ? 'yes' : 'NO',
              formatCpu(cpu),
            ],
          ],
        },
      ],
      data: { samplesPerS: Math.round(rate), acked, stored, failures, latency, cpu },
    };
  } finally {
    await server.stop();
  }
}
