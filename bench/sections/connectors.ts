/**
 * Connectors (issue #19's bar: "1,000 ThingSpeak channels polled every 15 s by one instance: CPU
 * <= 5 % of a core for the polling itself, p99 from an entry appearing upstream to a viewer
 * seeing it <= one poll interval + 1 s"). One server polls 1,000 `thingspeak` connectors, every
 * 15 s, against one ThingSpeak stand-in (src/demo/thingspeak-stand-in.ts) in this process, on
 * loopback, each channel gaining an entry every 5 s. The server reaches PostgreSQL through a
 * TCP proxy here that counts every statement it sends, whichever connection sends it
 * (test/support/pg-statements.ts).
 *
 * Over the measured window (after one poll interval of warm-up): polls/s (the server's
 * wavehouse_connector_polls_total), statements per poll (all of the server's, claim rounds and
 * heartbeats included), each poll's duration (its lastPollAt to its lastSuccessAt, read from the
 * connectors table every 500 ms on a connection of the bench's own), CPU per poll, and the delay
 * from an entry appearing upstream to its commit (its chunk's stored_at): a viewer sees it when it
 * is accepted, before the commit, so this bounds the bar's figure from above. Then the stand-in's
 * clock stops, every connector polls once more, and every channel's stream must hold each of its
 * entries exactly once. The connectors are deleted at the end, so later sections' servers on the
 * run's database do not poll them.
 */
import pg from 'pg';
import { ThingSpeakStandIn } from '../../src/demo/thingspeak-stand-in.ts';
import { createKey } from '../../test/support/access.ts';
import { pgStatementReader } from '../../test/support/pg-statements.ts';
import { startTcpProxy } from '../../test/support/tcp-proxy.ts';
import { startWavehouse } from '../lib/children.ts';
import { CpuMeter, formatCpu, postgresPidsOf } from '../lib/procfs.ts';
import { type Context, type Figure, ms, type SectionResult } from '../lib/report.ts';
import { Samples, sleep, summarize } from '../lib/stats.ts';

const connectorCount = 1_000;
const pollIntervalS = 15;
const entryEveryMs = 5_000;
const cpuBarCores = 0.05;
const delayBarMs = pollIntervalS * 1_000 + 1_000;
/** A poll of a stream with nothing new, and the commit a poll with records adds (test/integration/connector-poll-cost.test.ts). */
const statementsIdle = 5;
const statementsCommit = 4;

/** The count of wavehouse_connector_polls_total for each outcome. */
async function pollCounts(baseUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  const counts: Record<string, number> = {};
  for (const [, outcome, value] of text.matchAll(/wavehouse_connector_polls_total\{kind="thingspeak",outcome="(\w+)"\} (\d+)/g)) {
    counts[outcome] = Number(value);
  }
  return counts;
}

const sum = (counts: Record<string, number>) => Object.values(counts).reduce((a, b) => a + b, 0);

/** Creates the connectors through the API, `parallel` at a time. */
async function createConnectors(baseUrl: string, key: string, standIn: string): Promise<void> {
  const parallel = 16;
  for (let first = 1; first <= connectorCount; first += parallel) {
    const ids = Array.from({ length: Math.min(parallel, connectorCount - first + 1) }, (_, i) => first + i);
    await Promise.all(
      ids.map(async (channelId) => {
        const response = await fetch(`${baseUrl}/api/v1/connectors`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` },
          body: JSON.stringify({ kind: 'thingspeak', name: `node ${channelId}`, config: { baseUrl: standIn, channelId }, pollIntervalS }),
        });
        if (response.status !== 201) throw new Error(`creating connector ${channelId}: ${response.status} ${await response.text()}`);
      }),
    );
  }
}

/** Each poll's duration seen in the connectors table between `fromMs` and `toMs`, read every 500 ms. */
async function watchPolls(pool: pg.Pool, fromMs: number, toMs: number): Promise<{ durations: Samples; failed: number }> {
  const seen = new Map<string, number>();
  const durations = new Samples();
  let failed = 0;
  while (Date.now() < toMs + 1_000) {
    const { rows } = await pool.query<{ id: string; polled: Date | null; succeeded: Date | null }>(
      'SELECT id, last_poll_at AS polled, last_success_at AS succeeded FROM connectors',
    );
    for (const { id, polled, succeeded } of rows) {
      if (polled === null || polled.getTime() < fromMs || polled.getTime() >= toMs || seen.get(id) === polled.getTime()) continue;
      seen.set(id, polled.getTime());
      if (succeeded !== null && succeeded >= polled) durations.push(succeeded.getTime() - polled.getTime());
      else failed++;
    }
    await sleep(500);
  }
  return { durations, failed };
}

/**
 * Entry appearing upstream (entryId x entryEveryMs by the stand-in's clock) to its chunk's commit,
 * for the entries that appeared in the window.
 */
async function entryDelays(pool: pg.Pool, fromMs: number, toMs: number): Promise<Samples> {
  const { rows } = await pool.query<{ first: string; last: string; stored: Date }>(
    `SELECT first_seq AS first, last_seq AS last, stored_at AS stored FROM sample_chunks
      WHERE session_id IN (SELECT (s->>'sessionId')::uuid FROM connectors, jsonb_array_elements(streams) s)`,
  );
  const delays = new Samples();
  for (const row of rows) {
    for (let seq = Number(row.first); seq <= Number(row.last); seq++) {
      const appeared = seq * entryEveryMs;
      if (appeared >= fromMs && appeared < toMs) delays.push(row.stored.getTime() - appeared);
    }
  }
  return delays;
}

/** Channels whose stream does not hold each of the stand-in's entries exactly once (no hole, no duplicate). */
async function streamsOff(pool: pg.Pool, standIn: ThingSpeakStandIn): Promise<string[]> {
  const { rows } = await pool.query<{ channel: number; count: string; chunks: string; first: string; last: string; overlaps: string }>(
    `SELECT (c.config->>'channelId')::int AS channel, se.sample_count AS count, se.last_seq AS last,
            (SELECT coalesce(sum(sample_count), 0) FROM sample_chunks WHERE session_id = se.id) AS chunks,
            (SELECT min(first_seq) FROM sample_chunks WHERE session_id = se.id) AS first,
            (SELECT count(*) FROM (SELECT first_seq, lag(last_seq) OVER (ORDER BY first_seq) AS previous
                                     FROM sample_chunks WHERE session_id = se.id) x WHERE first_seq <= previous) AS overlaps
       FROM connectors c, jsonb_array_elements(c.streams) s, sessions se WHERE se.id = (s->>'sessionId')::uuid`,
  );
  const off: string[] = [];
  for (const row of rows) {
    const entries = standIn.entries(row.channel);
    const want = { count: entries.length, first: entries[0]?.entryId, last: entries.at(-1)?.entryId };
    const got = { count: Number(row.count), first: Number(row.first), last: Number(row.last) };
    if (got.count !== want.count || Number(row.chunks) !== want.count || got.first !== want.first || got.last !== want.last) {
      off.push(`channel ${row.channel}: stored ${JSON.stringify(got)}, upstream ${JSON.stringify(want)}`);
    } else if (Number(row.overlaps) > 0) off.push(`channel ${row.channel}: ${row.overlaps} overlapping chunks`);
  }
  if (rows.length !== connectorCount) off.push(`${rows.length} streams for ${connectorCount} connectors`);
  return off;
}

export async function connectorsSection(ctx: Context): Promise<SectionResult> {
  const windowS = ctx.quick ? pollIntervalS : 2 * pollIntervalS;
  let frozenAtMs: number | null = null;
  const standIn = await ThingSpeakStandIn.start({ clock: () => frozenAtMs ?? Date.now() });
  const values = (entryId: number) => [String(entryId % 1_000), String((entryId * 7) % 100), null, null, null, null, null, null];
  const fields = ['level', 'flow', null, null, null, null, null, null];
  for (let id = 1; id <= connectorCount; id++) standIn.addLiveChannel(id, { fields, everyMs: entryEveryMs, values, metadata: {} });
  let statements = 0;
  const proxy = await startTcpProxy(undefined, { readClient: () => pgStatementReader(() => void statements++) });
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 2 });
  const server = await startWavehouse(proxy.urlFor(ctx.databaseUrl));
  try {
    const admin = await createKey(ctx.databaseUrl, { name: 'bench connectors', role: 'admin' });
    const createdAt = Date.now();
    await createConnectors(server.baseUrl, admin.key, standIn.baseUrl);
    const createS = (Date.now() - createdAt) / 1_000;
    for (let streams = 0; streams < connectorCount; await sleep(500)) {
      if (Date.now() - createdAt > 90_000) throw new Error(`only ${streams} of ${connectorCount} streams created within 90 s`);
      const { rows } = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM connectors WHERE jsonb_array_length(streams) = 1');
      streams = rows[0].n;
    }
    ctx.log(`  ${connectorCount} connectors created in ${createS.toFixed(1)} s, all streaming after ${(Date.now() - createdAt) / 1_000} s`);
    await sleep(pollIntervalS * 1_000);

    const fromMs = Date.now();
    const toMs = fromMs + windowS * 1_000;
    const [pollsBefore, statementsBefore] = [await pollCounts(server.baseUrl), statements];
    const meter = new CpuMeter(
      { server: [server.pid], postgres: () => postgresPidsOf(ctx.databaseName), bench: [process.pid] },
      server.pid,
    );
    meter.begin();
    const watched = watchPolls(pool, fromMs, toMs);
    await sleep(toMs - Date.now());
    const cpu = meter.end();
    const [pollsAfter, statementsAfter] = [await pollCounts(server.baseUrl), statements];
    const { durations, failed } = await watched;
    const polls = sum(pollsAfter) - sum(pollsBefore);
    const succeeded = (pollsAfter.success ?? 0) - (pollsBefore.success ?? 0);
    const perPoll = (statementsAfter - statementsBefore) / polls;

    // The upstream stops gaining entries; every connector then polls once more and must hold them all.
    frozenAtMs = Date.now();
    const settleBy = frozenAtMs + 3 * pollIntervalS * 1_000;
    for (;;) {
      const { rows } = await pool.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM connectors WHERE NOT (last_poll_at > $1 AND last_success_at >= last_poll_at)',
        [new Date(frozenAtMs)],
      );
      if (rows[0].n === 0 || Date.now() > settleBy) break;
      await sleep(1_000);
    }
    const off = await streamsOff(pool, standIn);
    const delays = summarize([(await entryDelays(pool, fromMs, toMs)).values()]);
    const duration = summarize([durations.values()]);
    const offered = connectorCount / pollIntervalS;
    const rate = polls / windowS;
    const cpuMsPerPoll = ((cpu.cores.server ?? 0) * windowS * 1_000) / polls;
    const pgMsPerPoll = ((cpu.cores.postgres ?? 0) * windowS * 1_000) / polls;
    ctx.log(`  ${polls} polls in ${windowS} s (${succeeded} succeeded), ${perPoll.toFixed(2)} statements a poll; ${formatCpu(cpu)}`);
    if (off.length > 0) ctx.log(`  streams not exactly once: ${off.slice(0, 5).join('; ')}`);

    const section = 'Connectors';
    const figures: Figure[] = [
      {
        section,
        figure: `polls/s sustained, ${connectorCount} thingspeak connectors every ${pollIntervalS} s`,
        value: `${rate.toFixed(1)}/s`,
        limit: `offered ${offered.toFixed(1)}/s`,
        ratio: `${((rate / offered) * 100).toFixed(0)} %`,
        bar: '>= 95 % of offered, no failed poll',
        pass: rate >= 0.95 * offered && succeeded === polls,
        otherCores: cpu.otherCores,
      },
      {
        section,
        figure: 'database statements per poll (all of the server, on the wire)',
        value: perPoll.toFixed(2),
        limit: `${statementsIdle} idle, ${statementsIdle + statementsCommit} with records (the test's count)`,
        bar: `<= ${statementsIdle + statementsCommit}`,
        pass: perPoll <= statementsIdle + statementsCommit,
      },
      {
        section,
        figure: 'poll duration p99 (lastPollAt to lastSuccessAt: lock, claim, upstream, commit)',
        value: ms(duration.p99),
        limit: `p50 ${ms(duration.p50)}, max ${ms(duration.max)}`,
        bar: '',
        pass: null,
        otherCores: cpu.otherCores,
      },
      {
        section,
        figure: 'server CPU for the polling (the server does nothing else here)',
        value: `${((cpu.cores.server ?? 0) * 100).toFixed(1)} % of a core`,
        limit: `${cpuMsPerPoll.toFixed(2)} ms a poll; PostgreSQL ${pgMsPerPoll.toFixed(2)} ms a poll`,
        bar: `<= ${cpuBarCores * 100} % of a core`,
        pass: (cpu.cores.server ?? 0) <= cpuBarCores,
        otherCores: cpu.otherCores,
      },
      {
        section,
        figure: 'entry appearing upstream to committed, p99 (a viewer sees it before the commit)',
        value: ms(delays.p99),
        limit: `p50 ${ms(delays.p50)}, ${delays.count} entries`,
        bar: `<= ${ms(delayBarMs)} (poll interval + 1 s)`,
        pass: delays.count > 0 && delays.p99 <= delayBarMs,
        otherCores: cpu.otherCores,
      },
      {
        section,
        figure: 'every upstream entry stored exactly once (no hole, no duplicate), each channel',
        value: off.length === 0 ? 'yes' : `no: ${off.length} channels`,
        bar: 'yes',
        pass: off.length === 0,
      },
    ];
    return {
      figures,
      details: [
        {
          title: `Connectors: ${connectorCount} thingspeak connectors every ${pollIntervalS} s, ${windowS} s measured`,
          columns: ['polls', 'succeeded', 'failed (status)', 'statements/poll', 'poll p50', 'poll p99', 'entry delay p99', 'CPU'],
          rows: [[polls, succeeded, failed, perPoll.toFixed(2), ms(duration.p50), ms(duration.p99), ms(delays.p99), formatCpu(cpu)]],
          notes: [
            `Created through the API in ${createS.toFixed(1)} s. Each channel gains an entry every ${entryEveryMs / 1_000} s, ` +
              'so a poll finds about three. Statements are counted by a proxy in this process on the way to PostgreSQL.',
          ],
        },
      ],
      data: { connectorCount, pollIntervalS, windowS, polls, succeeded, perPoll, duration, delays, cpu, cpuMsPerPoll, off },
    };
  } finally {
    // Later sections' servers share the run's database: they must find no connector to poll.
    await pool.query('DELETE FROM connectors').catch((error: unknown) => ctx.log(`  could not delete the connectors: ${String(error)}`));
    await server.stop();
    await pool.end();
    await proxy.close();
    await standIn.close();
  }
}
