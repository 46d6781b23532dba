/**
 * Retention (issue #20's bar: "a retention drop of a day's partition holding 100 M samples:
 * < 1 s, no lock that blocks ingest longer than 100 ms"). A day partition is filled with chunk
 * rows of 1,000 samples made by SQL (generate_series; the payloads are zeros of the stored
 * size, 1,000 x 32 bytes at three channels), then dropped by the retention job's own code
 * (storage/chunk-partitions.ts) while commits of the writer's own code go on: the figures are
 * the drop's duration and the longest commit during it, beside the longest before it.
 *
 * 10 M samples (10,000 chunks, ~330 MB) by default, so the section stays within the bench's
 * minutes; BENCH_RETENTION_CHUNKS=100000 measures 100 M (~3.3 GB, minutes to fill). What a
 * DROP does is the same at any size: the catalog change under the lock, the files unlinked at
 * commit.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { dayMs, dayPartitionName, dropExpired, ensurePartitions, lockTimeoutMs } from '../../src/storage/chunk-partitions.ts';
import { migrate } from '../../src/storage/migrations.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { type Context, type Figure, ms, type SectionResult } from '../lib/report.ts';
import { Samples, summarize } from '../lib/stats.ts';

const chunks = Number(process.env.BENCH_RETENTION_CHUNKS ?? 10_000);
const chunkSamples = 1_000;
const channels = 3;
const dropBarMs = 1_000;
const blockBarMs = 100;
/** Commits of one writer loop: 1,000 samples each, as a lane flushes under load. */
const commitSamples = 1_000;

interface Window {
  commits: number;
  latency: ReturnType<typeof summarize>;
}

/** Commits back to back on `writers` sessions until `stop` is set; each commit's latency goes to `record`. */
async function ingest(store: SampleStore, sessionId: string, state: { stop: boolean; record: (ms: number) => void }): Promise<void> {
  let seq = 0;
  while (!state.stop) {
    const batch = SampleBatch.allocate(commitSamples, channels);
    for (let i = 0; i < commitSamples; i++) {
      batch.columns[i] = seq + i + 1;
      batch.columns[commitSamples + i] = Date.now() + i;
    }
    const started = performance.now();
    await store.commitChunks([{ sessionId, batches: [batch] }], [{ sessionId, sampleCount: commitSamples, lastSeq: seq + commitSamples }]);
    state.record(performance.now() - started);
    seq += commitSamples;
  }
}

export async function retentionSection(ctx: Context): Promise<SectionResult> {
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 6 });
  try {
    await migrate(pool);
    const { rows } = await pool.query<{ ms: number }>(
      'SELECT (extract(epoch FROM legacy_cut) * 1000)::float8 AS ms FROM sample_chunk_partitioning',
    );
    // A day well past the legacy partition's cut, so it is a day partition of its own.
    const day = rows[0].ms + 30 * dayMs;
    const client = await pool.connect();
    try {
      await ensurePartitions(client, day, 0);
      // The legacy partition, long expired then too, goes first and untimed: the figure is one day's drop.
      await dropExpired(client, day, 1);
    } finally {
      client.release();
    }
    const filler = randomUUID();
    await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['a', 'b', 'c'])`, [filler]);
    const fillStarted = performance.now();
    const payloadBytes = chunkSamples * (channels + 1) * 8;
    await pool.query(
      `INSERT INTO ${dayPartitionName(day)}
              (session_id, first_seq, last_seq, sample_count, payload_layout, payload, min_t, max_t, stored_at)
       SELECT $1, (i - 1) * ${chunkSamples} + 1, i * ${chunkSamples}, ${chunkSamples}, 1, p.payload, i, i, $2
         FROM generate_series(1, ${chunks}) AS i, (SELECT decode(repeat('00', ${payloadBytes}), 'hex') AS payload) AS p`,
      [filler, new Date(day + 3_600_000)],
    );
    const fillS = (performance.now() - fillStarted) / 1000;
    const { rows: size } = await pool.query<{ bytes: string }>(`SELECT pg_total_relation_size('${dayPartitionName(day)}') AS bytes`);
    await pool.query(`ANALYZE ${dayPartitionName(day)}`);
    // The fill's WAL (several times max_wal_size at 100 M) would otherwise be checkpointed during
    // the measurement, every commit's fsync queued behind it; a day dropped for retention is long
    // checkpointed. Needs superuser or pg_checkpoint; without, the figures carry that load.
    await pool.query('CHECKPOINT').catch((error: unknown) => ctx.log(`  no CHECKPOINT after the fill: ${String(error)}`));
    const megabytes = (Number(size[0].bytes) / 1e6).toFixed(0);
    ctx.log(`  filled ${chunks} chunks (${(chunks * chunkSamples) / 1e6} M samples, ${megabytes} MB) in ${fillS.toFixed(1)} s`);

    const store = new SampleStore(pool, { rollups: false });
    const writers = await Promise.all(
      [0, 1].map(async () => {
        const id = randomUUID();
        await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['a', 'b', 'c'])`, [id]);
        return id;
      }),
    );
    let during: Samples | null = null;
    const before = new Samples();
    const state = { stop: false, record: (latency: number) => (during ?? before).push(latency) };
    const loops = writers.map((id) => ingest(store, id, state));
    await new Promise((resolve) => setTimeout(resolve, 2_000));
    during = new Samples();
    const dropClient = await pool.connect();
    const dropStarted = performance.now();
    let dropped: Awaited<ReturnType<typeof dropExpired>>;
    try {
      dropped = await dropExpired(dropClient, day + 2 * dayMs, 1);
    } finally {
      dropClient.release();
    }
    const dropMs = performance.now() - dropStarted;
    // The commits that were waiting when the drop ended finish after it: count them in.
    await new Promise((resolve) => setTimeout(resolve, 200));
    state.stop = true;
    await Promise.all(loops);
    const windows: Record<'before' | 'during', Window> = {
      before: { commits: before.values().length, latency: summarize([before.values()]) },
      during: { commits: during.values().length, latency: summarize([during.values()]) },
    };
    ctx.log(
      `  drop: ${ms(dropMs)}: detach ${ms(dropped.detachMs)}, drop of the detached table ${ms(dropped.dropMs)} ` +
        `(${dropped.partitions} dropped, ${dropped.deferred} deferred)`,
    );
    for (const [name, w] of Object.entries(windows)) {
      ctx.log(`  commits ${name} the drop: ${w.commits}, p50 ${ms(w.latency.p50)}, max ${ms(w.latency.max)}`);
    }
    const sampleLabel = `${(chunks * chunkSamples) / 1e6} M samples`;
    const figures: Figure[] = [
      {
        section: 'Retention',
        figure: `drop of a day partition holding ${sampleLabel}: detach, then drop of the detached table`,
        value: ms(dropMs),
        limit: `detach ${ms(dropped.detachMs)}, drop ${ms(dropped.dropMs)}`,
        bar: `< ${dropBarMs} ms`,
        pass: dropped.partitions === 1 && dropMs < dropBarMs,
      },
      {
        section: 'Retention',
        figure: 'longest ingest commit while it drops (1,000 samples a commit, 2 writers)',
        value: ms(windows.during.latency.max),
        limit: `longest before it, ${ms(windows.before.latency.max)}`,
        bar: `< ${blockBarMs} ms`,
        pass: windows.during.latency.max < blockBarMs,
      },
    ];
    return {
      figures,
      details: [
        {
          title: `Retention: dropping a day partition of ${sampleLabel} while two writers commit`,
          columns: ['window', 'commits', 'p50', 'p99', 'max'],
          rows: Object.entries(windows).map(([name, w]) => [
            `${name} the drop`,
            w.commits,
            ms(w.latency.p50),
            ms(w.latency.p99),
            ms(w.latency.max),
          ]),
          notes: [
            `Filled by SQL in ${fillS.toFixed(1)} s: ${megabytes} MB. The detach waits at most ` +
              `${lockTimeoutMs} ms a try for the parent's lock, which ingest queues behind, then holds it for a catalog change; ` +
              `it took ${ms(dropped.detachMs)}, tries and pauses included. The detached table's drop (its files unlinked, ` +
              `${ms(dropped.dropMs)}) locks nothing ingest uses.`,
          ],
        },
      ],
      data: {
        chunks,
        samples: chunks * chunkSamples,
        fillS,
        dropMs,
        detachMs: dropped.detachMs,
        unlinkMs: dropped.dropMs,
        before: windows.before,
        during: windows.during,
      },
    };
  } finally {
    await pool.end();
  }
}
