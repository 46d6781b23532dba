/**
 * The raw COPY limit beside binary ingest: the same chunk rows Wavehouse writes, COPYed
 * straight into the same `sample_chunks` table by a plain script with nothing else to do
 * (no sockets, no decoding, no session bookkeeping). Rows are encoded with the server's own
 * encodeCopyBinary (so the COPY body is byte for byte what the server sends), the chunk
 * size is the server's default (WRITE_CHUNK_MAX_SAMPLES = 2,000), and each transaction is
 * one COPY of `rowsPerCopy` rows then COMMIT. One connection per session, in parallel.
 */
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import pg from 'pg';
import copyStreams from 'pg-copy-streams';
import { copyChunksSql, encodeCopyBinary } from '../../src/storage/chunk-codec.ts';
import { makeBatch } from '../lib/frames.ts';
import { serve } from '../lib/helper-side.ts';
import { sleep, wallMs } from '../lib/stats.ts';

interface RunArgs {
  databaseUrl: string;
  sessionIds: string[];
  chunkSamples: number;
  rowsPerCopy: number;
  startAtMs: number;
  warmupMs: number;
  measureMs: number;
}

async function writeLoop(client: pg.Client, sessionId: string, args: RunArgs, window: { from: number; to: number }) {
  const batches = Array.from({ length: args.rowsPerCopy }, (_, r) => makeBatch(1 + r * args.chunkSamples, args.chunkSamples));
  let nextSeq = 1;
  let samples = 0;
  let commits = 0;
  while (wallMs() < window.to) {
    // Fresh seqs every transaction: (session_id, last_seq) is the primary key.
    for (const batch of batches) {
      for (let i = 0; i < batch.count; i++) batch.columns[i] = nextSeq + i;
      nextSeq += batch.count;
    }
    const body = encodeCopyBinary(batches.map((batch) => ({ sessionId, batches: [batch] })));
    await client.query('BEGIN');
    await pipeline(Readable.from([body]), client.query(copyStreams.from(copyChunksSql)));
    await client.query('COMMIT');
    const committedAt = wallMs();
    if (committedAt >= window.from && committedAt < window.to) {
      samples += args.rowsPerCopy * args.chunkSamples;
      commits++;
    }
  }
  return { samples, commits };
}

async function run(args: RunArgs) {
  const clients = await Promise.all(
    args.sessionIds.map(async () => {
      const client = new pg.Client({ connectionString: args.databaseUrl });
      await client.connect();
      return client;
    }),
  );
  try {
    const window = { from: args.startAtMs + args.warmupMs, to: args.startAtMs + args.warmupMs + args.measureMs };
    await sleep(Math.max(0, args.startAtMs - wallMs()));
    const results = await Promise.all(clients.map((client, i) => writeLoop(client, args.sessionIds[i], args, window)));
    const samples = results.reduce((sum, r) => sum + r.samples, 0);
    return { samplesPerS: samples / (args.measureMs / 1000), commits: results.reduce((sum, r) => sum + r.commits, 0) };
  } finally {
    await Promise.all(clients.map((client) => client.end()));
  }
}

serve({ run: (args) => run(args as unknown as RunArgs) });
