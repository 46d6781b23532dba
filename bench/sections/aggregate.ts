/**
 * Aggregates (issue #18): GET /sessions/{id}/aggregate over long sessions, warm, against the
 * same query in plain SQL over a row-per-sample table, which is how these samples would sit
 * in PostgreSQL without Wavehouse.
 *
 * Two sessions go in through the real ingest socket (binary frames of 5,000 samples, at most
 * 200,000 unacked), so their chunks and roll-ups are what the writer commits:
 * - an hour at 1 kHz x 3 channels (3.6 M samples), asked for 1,000 buckets (bucketMs=3600)
 *   and for a points=2000 envelope (fn=first,last,min,max);
 * - a day at 100 Hz x 3 channels (8.64 M samples), asked for 1,440 buckets (bucketMs=60000).
 * Each query runs 3 times to warm, then `rounds` times one after another; p50 and p99 are of
 * those. The server runs without its read cache, so every request computes its answer. The
 * SQL baseline is the same buckets and fns (count, min, max, avg per channel) by GROUP BY
 * floor(t / bucketMs) over a table of the same number of rows, median of 5 runs.
 */
import pg from 'pg';
import WebSocket from 'ws';
import { startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { channelCount, channelValue } from '../lib/frames.ts';
import { type Context, type Figure, ms, type SectionResult, times, verdict } from '../lib/report.ts';
import { median, Samples, summarize } from '../lib/stats.ts';

const frameSamples = 5_000;
const maxUnacked = 200_000;
const t0 = 1_732_345_200_000;

/** A binary ingest frame (docs/protocol.md): seqs first.., t every 1000/hz ms from t0. */
function binaryFrame(first: number, count: number, hz: number): Buffer {
  const frame = Buffer.alloc(8 + 8 * count * (channelCount + 2));
  frame.writeUInt8(1, 0);
  frame.writeUInt16LE(channelCount, 2);
  frame.writeUInt32LE(count, 4);
  const columns = new Float64Array(frame.buffer, frame.byteOffset + 8, count * (channelCount + 2));
  for (let i = 0; i < count; i++) {
    const seq = first + i;
    columns[i] = seq;
    columns[count + i] = t0 + ((seq - 1) * 1000) / hz;
    for (let c = 0; c < channelCount; c++) columns[(c + 2) * count + i] = channelValue(seq, c);
  }
  return frame;
}

/** Streams `total` samples into the session and resolves once the last is acked (committed). */
function stream(wsUrl: string, sessionId: string, token: string, total: number, hz: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsUrl}/api/v1/sessions/${sessionId}/ingest`, { headers: { authorization: `Bearer ${token}` } });
    let sent = 0;
    let acked = 0;
    const send = () => {
      while (sent < total && sent - acked < maxUnacked) {
        const count = Math.min(frameSamples, total - sent);
        socket.send(binaryFrame(sent + 1, count, hz));
        sent += count;
      }
    };
    socket.on('open', send);
    socket.on('message', (data) => {
      const message = JSON.parse(String(data)) as { type: string; seq?: number; code?: string };
      if (message.type === 'error') return reject(new Error(`ingest refused a frame: ${message.code}`));
      if (message.type !== 'ack') return;
      acked = message.seq ?? acked;
      if (acked >= total) {
        socket.close();
        resolve();
      } else send();
    });
    socket.on('close', (code) => acked < total && reject(new Error(`ingest socket closed with ${code} at ${acked} of ${total}`)));
    socket.on('error', reject);
  });
}

async function timed(url: string, rounds: number): Promise<{ p50: number; p99: number; buckets: number }> {
  let buckets = 0;
  const once = async () => {
    const started = performance.now();
    const response = await fetch(url);
    const body = (await response.json()) as { buckets?: unknown[] };
    if (response.status !== 200) throw new Error(`${url}: ${response.status} ${JSON.stringify(body)}`);
    buckets = body.buckets?.length ?? 0;
    return performance.now() - started;
  };
  for (let i = 0; i < 3; i++) await once();
  const samples = new Samples();
  for (let i = 0; i < rounds; i++) samples.push(await once());
  const summary = summarize([samples.values()]);
  return { p50: summary.p50, p99: summary.p99, buckets };
}

/** The same query in SQL over a row-per-sample table of `total` rows, median ms of 5 runs. */
async function sqlBaseline(pool: pg.Pool, total: number, hz: number, bucketMs: number): Promise<number> {
  await pool.query('DROP TABLE IF EXISTS bench_aggregate_rows');
  await pool.query('CREATE TABLE bench_aggregate_rows (seq bigint, t double precision, ax float8, ay float8, az float8)');
  await pool.query(
    `INSERT INTO bench_aggregate_rows
       SELECT g, $2::float8 + (g - 1) * 1000.0 / $3, random() * 2 - 1, random() * 2 - 1, 9.81 + random() - 0.5
         FROM generate_series(1, $1::bigint) AS g`,
    [total, t0, hz],
  );
  await pool.query('VACUUM ANALYZE bench_aggregate_rows');
  const fns = ['ax', 'ay', 'az'].map((c) => `count(${c}), min(${c}), max(${c}), avg(${c})`).join(', ');
  const query = `SELECT floor(t / ${bucketMs}) * ${bucketMs} AS bucket, count(*), ${fns} FROM bench_aggregate_rows GROUP BY 1 ORDER BY 1`;
  const runs: number[] = [];
  for (let i = 0; i < 6; i++) {
    const started = performance.now();
    await pool.query(query);
    if (i > 0) runs.push(performance.now() - started);
  }
  await pool.query('DROP TABLE bench_aggregate_rows');
  return median(runs);
}

export async function aggregateSection(ctx: Context): Promise<SectionResult> {
  const hour = { total: 3_600_000, hz: 1_000 };
  const day = { total: ctx.quick ? 864_000 : 8_640_000, hz: ctx.quick ? 10 : 100 };
  const rounds = ctx.quick ? 20 : 100;
  // No read cache: a repeat would be a cached answer (the read-cache section's figure), not an aggregate computed.
  const server = await startWavehouse(ctx.databaseUrl, { READ_CACHE_MAX_BYTES: '0' });
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 1 });
  try {
    const hourSession = await createSession(server.baseUrl);
    const daySession = await createSession(server.baseUrl);
    ctx.log(`aggregate: ingesting ${hour.total} samples at ${hour.hz} Hz and ${day.total} at ${day.hz} Hz`);
    await stream(server.wsUrl, hourSession.sessionId, hourSession.ingestToken, hour.total, hour.hz);
    await stream(server.wsUrl, daySession.sessionId, daySession.ingestToken, day.total, day.hz);
    const url = (id: string, query: string) => `${server.baseUrl}/api/v1/sessions/${id}/aggregate?${query}`;
    const hourBuckets = await timed(url(hourSession.sessionId, 'bucketMs=3600'), rounds);
    const envelope = await timed(url(hourSession.sessionId, 'points=2000&fn=first,last,min,max'), rounds);
    const dayBuckets = await timed(url(daySession.sessionId, 'bucketMs=60000'), rounds);
    ctx.log('aggregate: the same queries in SQL over row-per-sample tables');
    const hourSql = await sqlBaseline(pool, hour.total, hour.hz, 3600);
    const daySql = await sqlBaseline(pool, day.total, day.hz, 60_000);
    const figure = (name: string, value: number, bar: string, pass: boolean, extra: Partial<Figure> = {}): Figure => ({
      section: 'aggregate',
      figure: name,
      value: ms(value),
      bar,
      pass,
      ...extra,
    });
    const speedup = (sql: number, ours: number) => ({ limit: `SQL ${ms(sql)}`, ratio: times(sql / ours) });
    const figures: Figure[] = [
      figure('1 h of 1 kHz to 1,000 buckets, p50', hourBuckets.p50, '<= 20 ms', hourBuckets.p50 <= 20),
      figure('1 h of 1 kHz to 1,000 buckets, p99', hourBuckets.p99, '<= 50 ms', hourBuckets.p99 <= 50),
      figure(
        '1 h of 1 kHz, against SQL over rows',
        hourBuckets.p50,
        '>= 20x faster',
        hourSql / hourBuckets.p50 >= 20,
        speedup(hourSql, hourBuckets.p50),
      ),
      figure('points=2000 envelope of 1 h at 1 kHz, p50', envelope.p50, '<= 30 ms', envelope.p50 <= 30),
      figure(`1 day of ${day.hz} Hz to 1,440 buckets, p50`, dayBuckets.p50, '<= 50 ms', dayBuckets.p50 <= 50),
      figure(
        `1 day of ${day.hz} Hz, against SQL over rows`,
        dayBuckets.p50,
        '>= 20x faster',
        daySql / dayBuckets.p50 >= 20,
        speedup(daySql, dayBuckets.p50),
      ),
    ];
    const row = (name: string, r: { p50: number; p99: number; buckets: number }, sql: number | null) => [
      name,
      r.buckets,
      ms(r.p50),
      ms(r.p99),
      sql === null ? '' : ms(sql),
      sql === null ? '' : `${times(sql / r.p50)} ${verdict(sql / r.p50 >= 20)}`,
    ];
    return {
      figures,
      details: [
        {
          title: `Aggregates, warm, ${rounds} requests each one after another`,
          columns: ['query', 'buckets', 'p50', 'p99', 'SQL over rows (median)', 'speed-up'],
          rows: [
            row('1 h at 1 kHz, bucketMs=3600', hourBuckets, hourSql),
            row('1 h at 1 kHz, points=2000 first,last,min,max', envelope, null),
            row(`1 day at ${day.hz} Hz, bucketMs=60000`, dayBuckets, daySql),
          ],
        },
      ],
      data: { hourBuckets, envelope, dayBuckets, hourSql, daySql },
    };
  } finally {
    await pool.end();
    await server.stop();
  }
}
