/**
 * Fan-out across instances (#20): one 1 kHz stream (20 frames/s of 50 samples) to 1,000
 * viewers, three ways in the same run: one instance reached directly (the fan-out
 * section's setup), one instance behind nginx, and three instances sharing the database and
 * Redis behind nginx running deploy/nginx/wavehouse.conf, where nginx (least_conn) spreads
 * the viewers and about two thirds of them receive through Redis from the producer's
 * instance. The bar compares the last with the first: what scale-out costs a viewer, proxy
 * included. The middle one tells the proxy's share from the cross-instance one.
 *
 * Method as the fan-out section's (fanout.ts): the producer stamps each frame's last `t`
 * with its wall clock, viewers (four processes) take receive time - `t`; 1 s warm-up, 10 s
 * measured, p99 over every frame delivered in the window; a frame still missing 1.5 s after
 * the stream stopped counts as not delivered.
 */
import { startNginx } from '../../test/support/nginx.ts';
import { Helper, type ServerHandle, startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { formatCpu, meterWindow, postgresPidsOf, round } from '../lib/procfs.ts';
import { type Context, type Figure, ms, otherLoad, pct, type SectionResult, times } from '../lib/report.ts';
import { sleep, summarize, wallMs } from '../lib/stats.ts';

const viewerProcesses = 4;
const ratioBar = 1.5;
const redisUrl = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface Setup {
  name: string;
  /** Instances behind nginx; null: the first instance, reached directly. */
  behindNginx: ServerHandle[] | null;
}

export async function fanoutNginxSection(ctx: Context): Promise<SectionResult> {
  const viewers = ctx.quick ? 200 : 1_000;
  const timing = ctx.quick ? { warmupMs: 500, measureMs: 3_000 } : { warmupMs: 1_000, measureMs: 10_000 };
  const cleanups: Array<() => Promise<void> | void> = [];
  const hooks = { after: (cleanup: () => Promise<void> | void) => cleanups.push(cleanup) };
  const servers: ServerHandle[] = [];
  const helpers: Helper[] = [];
  try {
    const env = { REDIS_URL: redisUrl, TRUST_PROXY: '127.0.0.1' };
    servers.push(...(await Promise.all([0, 1, 2].map(() => startWavehouse(ctx.databaseUrl, env)))));
    const viewerClients = await Promise.all(
      Array.from({ length: viewerProcesses }, (_, i) => Helper.start('clients/viewer-client.ts', `viewers-${i + 1}`)),
    );
    const producer = await Helper.start('clients/fanout-producer.ts', 'producer');
    helpers.push(...viewerClients, producer);
    const clientPids = [process.pid, ...helpers.map((helper) => helper.pid)];
    const setups: Setup[] = [
      { name: 'one instance, direct', behindNginx: null },
      { name: 'one instance behind nginx', behindNginx: servers.slice(0, 1) },
      { name: 'three instances behind nginx', behindNginx: servers },
    ];

    const results = [];
    for (const setup of setups) {
      ctx.log(`fan-out across instances: ${setup.name}, ${viewers} viewers`);
      const nginx = setup.behindNginx
        ? await startNginx(
            hooks,
            setup.behindNginx.map((server) => Number(new URL(server.baseUrl).port)),
          )
        : null;
      const wsUrl = nginx?.wsUrl ?? servers[0].wsUrl;
      const session = await createSession(servers[0].baseUrl, {});
      await producer.call('open', { url: `${wsUrl}/api/v1/sessions/${session.sessionId}/ingest`, token: session.ingestToken });
      const url = `${wsUrl}/api/v1/sessions/${session.sessionId}/live`;
      const connected = await Promise.all(
        viewerClients.map((client, i) =>
          client.call<{ failed: number; firstError: string | null }>(
            'connect',
            {
              group: setup.name,
              url,
              count: Math.floor(viewers / viewerProcesses) + (i < viewers % viewerProcesses ? 1 : 0),
              concurrency: 50,
            },
            120_000,
          ),
        ),
      );
      const failed = connected.reduce((sum, reply) => sum + reply.failed, 0);
      if (failed > 0) ctx.log(`  ${failed} viewers could not connect: ${connected.find((reply) => reply.firstError)?.firstError}`);
      const perInstance = await Promise.all(servers.map(liveSockets));
      await sleep(500);

      const startAtMs = wallMs() + 300;
      const fromT = startAtMs + timing.warmupMs;
      const toT = fromT + timing.measureMs;
      await Promise.all(viewerClients.map((client) => client.call('measure', { group: setup.name, fromT, toT })));
      const roles = { server: servers.map((server) => server.pid), postgres: () => postgresPidsOf(ctx.databaseName), clients: clientPids };
      const cpuUse = meterWindow(roles, fromT, toT);
      const sent = await producer.call<{ sentT: number[] }>(
        'stream',
        { startAtMs, durationMs: timing.warmupMs + timing.measureMs },
        60_000,
      );
      await sleep(1_500);
      const cpu = await cpuUse;
      const replies = await Promise.all(
        viewerClients.map((client) => client.call<{ latencies: Float64Array; frames: number }>('collect', { group: setup.name })),
      );
      const latency = summarize(replies.map((reply) => reply.latencies));
      const expected = sent.sentT.filter((t) => t >= fromT && t < toT).length * viewers;
      const delivered = replies.reduce((sum, reply) => sum + reply.frames, 0);
      ctx.log(`  p50 ${ms(latency.p50)} p99 ${ms(latency.p99)} delivered ${pct(delivered / expected)}; ${formatCpu(cpu)}`);
      results.push({ setup: setup.name, latency, expected, delivered, failed, perInstance, cpu });

      await Promise.all(viewerClients.map((client) => client.call('closeGroup', { group: setup.name })));
      await producer.call('close', {});
      await nginx?.stop();
    }

    const [direct, , spread] = results;
    const ratio = spread.latency.p99 / direct.latency.p99;
    const delivered = results.every((r) => r.delivered >= 0.99 * r.expected);
    const figures: Figure[] = [
      {
        section: 'fan-out across instances',
        figure: `three instances behind nginx, ${viewers} viewers: p99 vs one instance`,
        value: ms(spread.latency.p99),
        limit: ms(direct.latency.p99),
        ratio: times(ratio),
        bar: `<= ${ratioBar}x, >= 99 % delivered`,
        pass: ratio <= ratioBar && delivered,
        otherCores: otherLoad(direct.cpu, spread.cpu),
      },
    ];
    return {
      figures,
      details: [
        {
          title: `fan-out across instances: one 1 kHz stream to ${viewers} viewers`,
          columns: [
            'setup',
            'p50',
            'p99',
            'max',
            'delivered / expected frames',
            'live sockets per instance',
            'CPU cores (servers, postgres, clients, other)',
          ],
          rows: results.map((r) => [
            r.setup,
            ms(r.latency.p50),
            ms(r.latency.p99),
            ms(r.latency.max),
            `${r.delivered} / ${r.expected} (${pct(r.delivered / r.expected)})${r.failed ? `; ${r.failed} could not connect` : ''}`,
            r.perInstance.join(' / '),
            formatCpu(r.cpu),
          ]),
          notes: [
            `${timing.measureMs} ms measured after ${timing.warmupMs} ms warm-up; viewers in ${viewerProcesses} processes; ` +
              'the producer reaches the instances the way its viewers do (directly, or through nginx)',
            "nginx: Debian's, one worker, running deploy/nginx/wavehouse.conf with its ports and log paths changed",
          ],
        },
      ],
      data: {
        viewers,
        setups: results.map((r) => ({
          setup: r.setup,
          p50Ms: round(r.latency.p50, 2),
          p99Ms: round(r.latency.p99, 2),
          maxMs: round(r.latency.max, 2),
          delivered: r.delivered,
          expected: r.expected,
          liveSocketsPerInstance: r.perInstance,
          cpuCores: r.cpu?.cores,
          otherCores: r.cpu?.otherCores,
        })),
      },
    };
  } finally {
    await Promise.all(helpers.map((helper) => helper.stop()));
    for (const cleanup of cleanups.reverse()) await cleanup();
    await Promise.all(servers.map((server) => server.stop()));
  }
}

/** Open live sockets of one instance, from its /metrics. */
async function liveSockets(server: ServerHandle): Promise<number> {
  const text = await (await fetch(`${server.baseUrl}/metrics`)).text();
  return Number(/^wavehouse_sockets_open\{[^}]*kind="live"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 0);
}
