/**
 * REST under a fixed offered rate: autocannon at overallRate 2,000 requests/s for ~10 s,
 * creating sessions (POST /api/v1/sessions, a commit each) and getting one (GET
 * /api/v1/sessions/{id}), each after a short unreported warm-up. autocannon's default 10
 * connections.
 *
 * Latency is taken from autocannon's per-response event (exact milliseconds from hrtime):
 * its own histogram stores whole milliseconds, too coarse beside a 5 ms bar. Its
 * coordinated-omission-corrected p99 is shown too. The step must also actually reach the
 * offered rate (>= 95 %), with no errors and no non-2xx, to pass.
 *
 * How autocannon applies a rate: each connection gets a budget of rate/connections requests
 * per second and sends them back to back (one in flight per connection) from the start of
 * each second, then waits for the next. So the server sees bursts of 10 concurrent requests,
 * not evenly spaced ones. The verdict stays on autocannon's figure (the method); an
 * evenly paced open-loop run (a request every 0.5 ms, latency from its scheduled time, so
 * no coordinated omission) is shown beside it to tell queueing in bursts from service time.
 */
import autocannon from 'autocannon';
import { startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { pacedLoad } from '../lib/paced-load.ts';
import { CpuMeter, type CpuUse, formatCpu, postgresPidsOf, round } from '../lib/procfs.ts';
import { type Context, type Figure, ms, type SectionResult } from '../lib/report.ts';
import { Samples, type Summary, summarize } from '../lib/stats.ts';

const rate = 2_000;
const connections = 10;
const p99BarMs = 5;

interface RestStep {
  name: string;
  achievedRate: number;
  latency: Summary;
  autocannonP99: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  cpu: CpuUse;
  paced: { latency: Summary; achievedRate: number; failures: number; cpu: CpuUse };
}

async function load(options: autocannon.Options): Promise<{ result: autocannon.Result; latencies: Float64Array }> {
  const latencies = new Samples();
  const result = await new Promise<autocannon.Result>((resolve, reject) => {
    const instance = autocannon(options, (error, res) => (error ? reject(error) : resolve(res)));
    instance.on('response', (_client, _status, _bytes, responseTime) => latencies.push(responseTime));
  });
  return { result, latencies: latencies.values() };
}

/** The evenly paced run beside autocannon's, at the same rate and for as long. */
async function paced(
  url: string,
  method: string,
  body: string | undefined,
  durationS: number,
): Promise<{ latency: Summary; achievedRate: number; failures: number }> {
  const { latencies, achievedRate, failures } = await pacedLoad({ url, method, body }, rate, durationS);
  return { latency: summarize([latencies]), achievedRate, failures };
}

export async function restSection(ctx: Context): Promise<SectionResult> {
  const durationS = ctx.quick ? 3 : 10;
  const server = await startWavehouse(ctx.databaseUrl);
  try {
    const session = await createSession(server.baseUrl);
    const targets: Array<{ name: string; options: autocannon.Options }> = [
      {
        name: 'POST /api/v1/sessions',
        options: {
          url: `${server.baseUrl}/api/v1/sessions`,
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ channels: ['ax', 'ay', 'az'], sampleRateHz: 1000 }),
        },
      },
      { name: 'GET /api/v1/sessions/{id}', options: { url: `${server.baseUrl}/api/v1/sessions/${session.sessionId}` } },
    ];
    const steps: RestStep[] = [];
    for (const target of targets) {
      ctx.log(`rest: ${target.name} at ${rate} req/s`);
      await load({ ...target.options, connections, overallRate: rate, duration: 2 });
      const meter = new CpuMeter({
        server: [server.pid],
        postgres: () => postgresPidsOf(ctx.databaseName),
        clients: [process.pid],
      }).begin();
      const { result, latencies } = await load({ ...target.options, connections, overallRate: rate, duration: durationS });
      const cpu = meter.end();
      const options = target.options;
      const pacedMeter = new CpuMeter({
        server: [server.pid],
        postgres: () => postgresPidsOf(ctx.databaseName),
        clients: [process.pid],
      }).begin();
      const pacedResult = {
        ...(await paced(String(options.url), options.method ?? 'GET', options.body as string | undefined, durationS)),
        cpu: pacedMeter.end(),
      };
      const step: RestStep = {
        name: target.name,
        achievedRate: result.requests.total / durationS,
        latency: summarize([latencies]),
        autocannonP99: result.latency.p99,
        errors: result.errors,
        timeouts: result.timeouts,
        non2xx: result.non2xx,
        cpu,
        paced: pacedResult,
      };
      ctx.log(`  ${step.achievedRate.toFixed(0)} req/s, p50 ${ms(step.latency.p50)} p99 ${ms(step.latency.p99)}; ${formatCpu(cpu)}`);
      ctx.log(
        `  evenly paced: ${pacedResult.achievedRate.toFixed(0)} req/s, ` +
          `p50 ${ms(pacedResult.latency.p50)} p99 ${ms(pacedResult.latency.p99)}; ${formatCpu(pacedResult.cpu)}`,
      );
      steps.push(step);
    }
    const figures: Figure[] = steps.flatMap((s) => [
      {
        section: 'REST',
        figure: `${s.name} at ${rate} req/s (autocannon): p50 / p99`,
        value: `${ms(s.latency.p50)} / ${ms(s.latency.p99)}`,
        bar: `p99 <= ${p99BarMs} ms, no errors`,
        pass: s.latency.p99 <= p99BarMs && s.errors === 0 && s.non2xx === 0 && s.timeouts === 0 && s.achievedRate >= 0.95 * rate,
        otherCores: s.cpu.otherCores,
      },
      {
        section: 'REST',
        figure: `${s.name}, evenly paced: p50 / p99`,
        value: `${ms(s.paced.latency.p50)} / ${ms(s.paced.latency.p99)}`,
        bar: '',
        pass: null,
        otherCores: s.paced.cpu.otherCores,
      },
    ]);
    return {
      figures,
      details: [
        {
          title: `REST: autocannon, ${connections} connections, overallRate ${rate}/s, ${durationS} s each`,
          columns: [
            'request',
            'achieved',
            'p50',
            'p99',
            'max',
            'autocannon p99 (CO-corrected, whole ms)',
            'errors',
            'timeouts',
            'non-2xx',
            'CPU cores (server, postgres, client, other)',
            'evenly paced: achieved, p50 / p99 / max, failures',
          ],
          rows: steps.map((s) => [
            s.name,
            `${s.achievedRate.toFixed(0)}/s`,
            ms(s.latency.p50),
            ms(s.latency.p99),
            ms(s.latency.max),
            `${s.autocannonP99} ms`,
            s.errors,
            s.timeouts,
            s.non2xx,
            formatCpu(s.cpu),
            `${s.paced.achievedRate.toFixed(0)}/s, ${ms(s.paced.latency.p50)} / ${ms(s.paced.latency.p99)} / ${ms(s.paced.latency.max)}, ` +
              `${s.paced.failures}; ${formatCpu(s.paced.cpu)}`,
          ]),
        },
      ],
      data: {
        rate,
        connections,
        durationS,
        steps: steps.map((s) => ({
          name: s.name,
          achievedRate: Math.round(s.achievedRate),
          p50Ms: round(s.latency.p50, 3),
          p99Ms: round(s.latency.p99, 3),
          maxMs: round(s.latency.max, 2),
          autocannonP99Ms: s.autocannonP99,
          errors: s.errors,
          timeouts: s.timeouts,
          non2xx: s.non2xx,
          cpuCores: s.cpu.cores,
          otherCores: s.cpu.otherCores,
          paced: {
            achievedRate: Math.round(s.paced.achievedRate),
            p50Ms: round(s.paced.latency.p50, 3),
            p99Ms: round(s.paced.latency.p99, 3),
            maxMs: round(s.paced.latency.max, 2),
            failures: s.paced.failures,
            cpuCores: s.paced.cpu.cores,
            otherCores: s.paced.cpu.otherCores,
          },
        })),
      },
    };
  } finally {
    await server.stop();
  }
}
