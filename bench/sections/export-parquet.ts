/**
 * Parquet export: GET /data?format=parquet of a 1 M- and a 10 M-sample session, each on a fresh
 * server after a 20,000-sample warm-up export, with the server's RSS polled every 10 ms.
 *
 * The bar is the memory bound of issue #20: the body is written a row group at a time and only
 * the footer's metadata is kept, so the server's peak RSS growth for 10 M samples must stay
 * within 1.25x that for 1 M + 8 MiB (a server that buffered the file would grow by its size,
 * about 400 MB). Completeness: the footer's row count, read from the body's last bytes.
 * Speed is reported beside it, without a bar.
 */
import http from 'node:http';
import { parquetMetadata } from 'hyparquet';
import pg from 'pg';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { startWavehouse } from '../lib/children.ts';
import { createSession } from '../lib/db.ts';
import { CpuMeter, formatCpu, postgresPidsOf, watchRss } from '../lib/procfs.ts';
import { type Context, mps, otherLoad, type SectionResult } from '../lib/report.ts';
import { sleep } from '../lib/stats.ts';
import { seed } from './export.ts';

const tailBytes = 1024 * 1024;

/** Downloads a Parquet body keeping only its last bytes; its row count is the footer's. */
function download(url: string): Promise<{ status: number; bytes: number; rows: number | null; seconds: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    http
      .get(url, { agent: false }, (response) => {
        let bytes = 0;
        let tail = Buffer.alloc(0);
        response.on('data', (chunk: Buffer) => {
          bytes += chunk.length;
          tail = Buffer.concat([tail, chunk]).subarray(-tailBytes);
        });
        response.on('end', () => {
          const seconds = (performance.now() - started) / 1000;
          let rows: number | null = null;
          try {
            rows = Number(parquetMetadata(tail).num_rows);
          } catch {}
          resolve({ status: response.statusCode ?? 0, bytes, rows, seconds });
        });
        response.on('error', reject);
      })
      .on('error', reject);
  });
}

async function measure(ctx: Context, sessionId: string, samples: number, warmSessionId: string) {
  const server = await startWavehouse(ctx.databaseUrl);
  try {
    const url = (id: string) => `${server.baseUrl}/api/v1/sessions/${id}/data?format=parquet`;
    await download(url(warmSessionId));
    await sleep(500);
    const rss = watchRss(server.pid);
    const meter = new CpuMeter({ server: [server.pid], postgres: () => postgresPidsOf(ctx.databaseName), client: [process.pid] }).begin();
    const result = await download(url(sessionId));
    const cpu = meter.end();
    const { beforeKiB: rssBeforeKiB, peakKiB: rssPeakKiB } = rss.stop();
    const run = {
      samples,
      samplesPerS: samples / result.seconds,
      bytes: result.bytes,
      complete: result.status === 200 && result.rows === samples,
      growthKiB: rssPeakKiB - rssBeforeKiB,
      rssBeforeKiB,
      cpu,
    };
    ctx.log(
      `  ${mps(run.samplesPerS)}, ${(run.bytes / 2 ** 20).toFixed(1)} MiB, rows ${result.rows}; RSS ` +
        `${Math.round(rssBeforeKiB / 1024)} -> peak ${Math.round(rssPeakKiB / 1024)} MiB; ${formatCpu(cpu)}`,
    );
    return run;
  } finally {
    await server.stop();
  }
}

export async function exportParquetSection(ctx: Context): Promise<SectionResult> {
  const sizes = ctx.quick ? [200_000, 2_000_000] : [1_000_000, 10_000_000];
  const setup = await startWavehouse(ctx.databaseUrl);
  const [small, large, warm] = await Promise.all([
    createSession(setup.baseUrl),
    createSession(setup.baseUrl),
    createSession(setup.baseUrl),
  ]);
  await setup.stop();
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 2 });
  ctx.log(`export-parquet: seeding ${sizes[0]} + ${sizes[1]} + 20000 samples through SampleStore`);
  try {
    const store = new SampleStore(pool);
    await seed(store, small.sessionId, sizes[0]);
    await seed(store, large.sessionId, sizes[1]);
    await seed(store, warm.sessionId, 20_000);
  } finally {
    await pool.end();
  }
  const runs = [];
  for (const [sessionId, samples] of [
    [small.sessionId, sizes[0]],
    [large.sessionId, sizes[1]],
  ] as const) {
    ctx.log(`export-parquet: ${samples} samples`);
    runs.push(await measure(ctx, sessionId, samples, warm.sessionId));
  }
  const [first, second] = runs;
  const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;
  const flat = second.growthKiB <= 1.25 * first.growthKiB + 8 * 1024;
  return {
    figures: [
      {
        section: 'export-parquet',
        figure: `Parquet, ${first.samples / 1e6} M samples`,
        value: mps(first.samplesPerS),
        bar: '',
        pass: null,
        otherCores: otherLoad(first.cpu),
      },
      {
        section: 'export-parquet',
        figure: `server peak RSS growth, Parquet ${first.samples / 1e6} M -> ${second.samples / 1e6} M samples`,
        value: `${mib(first.growthKiB)} -> ${mib(second.growthKiB)}`,
        bar: 'flat: 10 M <= 1.25x 1 M + 8 MiB',
        pass: flat && runs.every((run) => run.complete),
      },
    ],
    details: [
      {
        title: 'export-parquet: GET /api/v1/sessions/{id}/data?format=parquet, fresh server per session',
        columns: ['samples', 'samples/s', 'body', 'RSS before', 'growth', 'complete', 'CPU cores (server, postgres, client, other)'],
        rows: runs.map((run) => [
          run.samples,
          mps(run.samplesPerS),
          mib(run.bytes / 1024),
          mib(run.rssBeforeKiB),
          mib(run.growthKiB),
          run.complete ? 'yes' : 'NO',
          formatCpu(run.cpu),
        ]),
        notes: ['complete: status 200 and the footer counts every sample; growth = polled peak VmRSS - VmRSS before the export'],
      },
    ],
    data: {
      runs: runs.map((run) => ({
        samples: run.samples,
        samplesPerS: Math.round(run.samplesPerS),
        bytes: run.bytes,
        growthKiB: run.growthKiB,
      })),
      flat,
    },
  };
}
