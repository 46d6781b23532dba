/**
 * Compression of sealed chunks (issue #20): bytes on disk per sample of a 1 kHz 3-axis SCG
 * recording before and after the chunk compressor, the compression throughput (the codec
 * alone, and the job end to end), and reads of compressed data against uncompressed.
 *
 * The values are the simulator's waveform (src/cli/scg-waveform.ts) in three shapes: as the
 * simulator sends them (full float64, its noise in every mantissa bit), as a phone's sensor
 * gives them (float32 widened to float64: Android's SensorEvent), and as decimal text with 4
 * decimals. t is the simulator's (epoch ms, 1 ms apart). Each shape is stored as a live 1 kHz
 * session commits it, 20-sample chunks, through SampleStore.commitChunks, then compressed by a
 * ChunkCompressor run here (the server's own is off). Bytes are pg_total_relation_size (heap,
 * TOAST and its index, the indexes) of a fresh copy of the session's chunks in a table like
 * sample_chunks (tableBytes), over the samples; roll-ups are another table, not counted.
 *
 * Reads: two sessions of the float32 shape, one compressed and one not, each read in turns
 * (three rounds, median): the whole session as JSON, and a raw aggregate (bucketMs=1000, which
 * no roll-up resolution divides).
 */
import { readFileSync } from 'node:fs';
import pg from 'pg';
import { ScgWaveform } from '../../src/cli/scg-waveform.ts';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { compressBatch, decompressPayload } from '../../src/storage/chunk-compression.ts';
import { ChunkCompressor } from '../../src/storage/chunk-compressor.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { startWavehouse } from '../lib/children.ts';
import { type CreatedSession, createSession } from '../lib/db.ts';
import { type Context, type Figure, mps, ms, type SectionResult, times } from '../lib/report.ts';
import { median } from '../lib/stats.ts';

const t0 = 1_732_345_200_000;
const chunkSamples = 20;
const shapes = {
  'simulator (float64)': (v: number) => v,
  'phone (float32)': (v: number) => Math.fround(v),
  'decimal text (4 dp)': (v: number) => Number(v.toFixed(4)),
} as const;
type Shape = keyof typeof shapes;

function recording(shape: Shape, count: number): SampleBatch {
  const waveform = new ScgWaveform({ rateHz: 1000, channels: 3, seed: 20 });
  const batch = SampleBatch.allocate(count, 3);
  const { columns } = batch;
  for (let i = 0; i < count; i++) {
    const values = waveform.next();
    columns[i] = i + 1;
    columns[count + i] = t0 + i;
    for (let c = 0; c < 3; c++) columns[(c + 2) * count + i] = shapes[shape](values[c]);
  }
  return batch;
}

/** Seconds this process's main thread has run (/proc schedstat): its GC and pool threads are not the job's. */
function mainThreadSeconds(): number {
  return Number(readFileSync(`/proc/${process.pid}/task/${process.pid}/schedstat`, 'utf8').split(' ')[0]) / 1e9;
}

/** Samples per CPU second of this process for `work` on `samples`, repeated for about `forMs`. */
function cpuRate(samples: number, forMs: number, work: () => void): number {
  const cpu = process.cpuUsage();
  const started = performance.now();
  let rounds = 0;
  while (performance.now() - started < forMs) {
    work();
    rounds++;
  }
  const used = process.cpuUsage(cpu);
  return (rounds * samples) / ((used.user + used.system) / 1e6);
}

async function seed(store: SampleStore, sessionId: string, batch: SampleBatch): Promise<void> {
  for (let start = 0; start < batch.count; start += 10_000) {
    const end = Math.min(batch.count, start + 10_000);
    const batches = [];
    for (let from = start; from < end; from += chunkSamples) batches.push(batch.slice(from, Math.min(end, from + chunkSamples)));
    const rows = batches.map((b) => ({ sessionId, batches: [b] }));
    await store.commitChunks(rows, [{ sessionId, sampleCount: end - start, lastSeq: end }]);
  }
}

interface TableBytes {
  total: number;
  heap: number;
  toast: number;
  indexes: number;
  payload: number;
}

/**
 * What the session's chunks take on disk, measured on a fresh copy of them in a table like
 * sample_chunks (its storage, its indexes): the real table keeps the dead rows of what the
 * compressor replaced until VACUUM may remove them, which a snapshot anywhere in the database
 * can hold back, and a fresh copy is what the steady state holds, dead rows reused.
 */
async function tableBytes(pool: pg.Pool, sessionId: string): Promise<TableBytes> {
  await pool.query('DROP TABLE IF EXISTS bench_chunks');
  await pool.query('CREATE TABLE bench_chunks (LIKE sample_chunks INCLUDING ALL)');
  try {
    await pool.query('INSERT INTO bench_chunks SELECT * FROM sample_chunks WHERE session_id = $1 ORDER BY last_seq', [sessionId]);
    await pool.query('VACUUM ANALYZE bench_chunks');
    const { rows } = await pool.query(`SELECT pg_total_relation_size('bench_chunks')::float8 AS total,
        pg_relation_size('bench_chunks')::float8 AS heap,
        pg_total_relation_size(reltoastrelid)::float8 AS toast,
        pg_indexes_size('bench_chunks')::float8 AS indexes,
        (SELECT coalesce(sum(octet_length(payload)), 0)::float8 FROM bench_chunks) AS payload
      FROM pg_class WHERE oid = 'bench_chunks'::regclass`);
    return rows[0];
  } finally {
    await pool.query('DROP TABLE bench_chunks');
  }
}

/**
 * Deletes the session and, by cascade, its chunks and roll-ups. The server's roll-up compactor
 * may be rewriting its roll-ups meanwhile, and the two can deadlock over them (the server's own
 * purge takes its rows in an order that cannot, session-deletes.ts); PostgreSQL then cancels one
 * of them, so the delete is tried again.
 */
async function dropSession(pool: pg.Pool, sessionId: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await pool.query('DELETE FROM sessions WHERE id = $1', [sessionId]);
      return;
    } catch (error) {
      if ((error as { code?: string }).code !== '40P01' || attempt === 5) throw error;
    }
  }
}

async function end(baseUrl: string, session: CreatedSession): Promise<void> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.ingestToken}` },
  });
  if (response.status !== 200) throw new Error(`ending a session: ${response.status}`);
}

async function timedRead(url: string): Promise<number> {
  const started = performance.now();
  const response = await fetch(url);
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`${url}: ${response.status}`);
  return performance.now() - started;
}

export async function compressSection(ctx: Context): Promise<SectionResult> {
  const samples = ctx.quick ? 120_000 : 600_000;
  const figures: Figure[] = [];
  const sizeRows: Array<Array<string | number>> = [];
  const rateRows: Array<Array<string | number>> = [];
  // Idle keep-alive connections are kept while the bench works on the database for seconds.
  const server = await startWavehouse(ctx.databaseUrl, {
    COMPRESS_INTERVAL_MS: '0',
    READ_CACHE_MAX_BYTES: '0',
    HTTP_KEEP_ALIVE_TIMEOUT_MS: '600000',
  });
  const pool = new pg.Pool({ connectionString: ctx.databaseUrl, max: 4 });
  const store = new SampleStore(pool);
  const perSample = (bytes: number) => (bytes / samples).toFixed(2);
  const data: Record<string, unknown> = {};
  try {
    for (const shape of Object.keys(shapes) as Shape[]) {
      const batch = recording(shape, samples);
      const block = batch.slice(0, 8192);
      const payload = compressBatch(block);
      const encode = cpuRate(block.count, ctx.quick ? 300 : 1500, () => compressBatch(block));
      const decode = cpuRate(block.count, ctx.quick ? 300 : 1500, () => decompressPayload(payload, block.count, 'bench'));

      const session = await createSession(server.baseUrl);
      await seed(store, session.sessionId, batch);
      await end(server.baseUrl, session);
      const before = await tableBytes(pool, session.sessionId);
      const cpuS = mainThreadSeconds();
      const started = performance.now();
      const done = await new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0 }).compress();
      const wallS = (performance.now() - started) / 1000;
      const usedS = mainThreadSeconds() - cpuS;
      if (done.samples !== samples) throw new Error(`compressed ${done.samples} of ${samples} samples`);
      const after = await tableBytes(pool, session.sessionId);
      await dropSession(pool, session.sessionId);
      ctx.log(`  ${shape}: ${perSample(before.total)} -> ${perSample(after.total)} B/sample`);

      for (const [stage, bytes] of [
        ['uncompressed', before],
        ['compressed', after],
      ] as const) {
        sizeRows.push([
          shape,
          stage,
          perSample(bytes.total),
          perSample(bytes.payload),
          perSample(bytes.heap),
          perSample(bytes.toast),
          perSample(bytes.indexes),
        ]);
      }
      const job = samples / wallS;
      const jobPerCore = samples / usedS;
      rateRows.push([shape, mps(encode), mps(decode), mps(job), mps(jobPerCore)]);
      data[shape] = { before, after, encode, decode, job, jobPerCore };
      figures.push({
        section: 'compress',
        figure: `bytes on disk per sample, 1 kHz x 3 SCG, ${shape}`,
        value: `${perSample(after.total)} B`,
        limit: `${perSample(before.total)} B`,
        ratio: times(after.total / before.total),
        bar: '<= 12 B',
        pass: after.total / samples <= 12,
      });
      figures.push({
        section: 'compress',
        figure: `compression codec, ${shape}`,
        value: `${mps(encode)} per core`,
        bar: '>= 2 M/s',
        pass: encode >= 2e6,
      });
    }
    const shape: Shape = 'phone (float32)';
    figures.push({
      section: 'compress',
      figure: `compression job end to end, ${shape}`,
      value: `${mps((data[shape] as { jobPerCore: number }).jobPerCore)} per core`,
      bar: '>= 2 M/s',
      pass: (data[shape] as { jobPerCore: number }).jobPerCore >= 2e6,
    });
    figures.push(...(await readFigures(ctx, server.baseUrl, pool, store, recording(shape, samples), data)));
  } finally {
    await pool.end();
    await server.stop();
  }
  return {
    figures,
    details: [
      {
        title: `compress: bytes a sample on disk, ${samples.toLocaleString('en')} samples, 20-sample chunks as committed (a fresh copy)`,
        columns: ['values', 'chunks', 'total', 'payload', 'heap', 'TOAST', 'indexes'],
        rows: sizeRows,
        notes: ['total = heap + TOAST (with its index) + indexes; payload is part of heap or TOAST'],
      },
      {
        title:
          'compress: throughput (codec on 8,192-sample chunks, per CPU second; the job in wall time and per CPU second of its main thread)',
        columns: ['values', 'encode', 'decode', 'job (wall)', 'job (per core)'],
        rows: rateRows,
      },
    ],
    data,
  };
}

/** The whole session as JSON and a raw aggregate, compressed against uncompressed, in turns. */
async function readFigures(
  ctx: Context,
  baseUrl: string,
  pool: pg.Pool,
  store: SampleStore,
  batch: SampleBatch,
  data: Record<string, unknown>,
): Promise<Figure[]> {
  const plain = await createSession(baseUrl);
  const compressed = await createSession(baseUrl);
  for (const session of [plain, compressed]) await seed(store, session.sessionId, batch);
  await end(baseUrl, compressed);
  // Only the ended session is sealed: the other's lastT is not a day past anything.
  await new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 86_400_000 }).compress();
  const reads = { export: '/data', aggregate: '/aggregate?bucketMs=1000' };
  const figures: Figure[] = [];
  for (const [name, path] of Object.entries(reads)) {
    const url = (session: CreatedSession) => `${baseUrl}/api/v1/sessions/${session.sessionId}${path}`;
    await timedRead(url(plain));
    await timedRead(url(compressed));
    const plainMs: number[] = [];
    const compressedMs: number[] = [];
    for (let round = 0; round < 3; round++) {
      plainMs.push(await timedRead(url(plain)));
      compressedMs.push(await timedRead(url(compressed)));
    }
    const ratio = median(compressedMs) / median(plainMs);
    ctx.log(`  ${name}: ${ms(median(compressedMs))} compressed, ${ms(median(plainMs))} not`);
    data[`read-${name}`] = { plainMs, compressedMs };
    figures.push({
      section: 'compress',
      figure: `${name} of a compressed session (${batch.count.toLocaleString('en')} samples)`,
      value: ms(median(compressedMs)),
      limit: ms(median(plainMs)),
      ratio: times(ratio),
      bar: '<= 1.2x',
      pass: ratio <= 1.2,
    });
  }
  return figures;
}
