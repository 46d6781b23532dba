/**
 * Commits straight to a SampleStore on a fresh database, for the roll-up tests that need to
 * choose each commit's samples (late t, sprayed t, several parts per block).
 */
import { randomUUID } from 'node:crypto';
import type { TestContext } from 'node:test';
import pino from 'pino';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { createPool, type Pool } from '../../src/storage/database.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { freshDatabase } from './database.ts';
import type { PlainSample } from './rollup-reference.ts';

/** A store on a fresh database with one session of one channel. */
export async function storeWithSession(t: TestContext, rollups = true): Promise<{ pool: Pool; sessionId: string; store: SampleStore }> {
  const database = await freshDatabase();
  const pool = createPool(database.url, 6, pino({ level: 'silent' }));
  t.after(async () => {
    await pool.end();
    await database.drop();
  });
  const sessionId = randomUUID();
  await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['v'])`, [sessionId]);
  return { pool, sessionId, store: new SampleStore(pool, { rollups }) };
}

function batchOf(samples: readonly PlainSample[]): SampleBatch {
  const n = samples.length;
  const batch = SampleBatch.allocate(n, 1);
  samples.forEach(({ seq, t, values }, i) => {
    batch.columns[i] = seq;
    batch.columns[n + i] = t;
    batch.columns[2 * n + i] = values[0];
  });
  return batch;
}

/** One-channel samples with consecutive seqs from `firstSeq`, at `ts`. */
export const samplesAt = (firstSeq: number, ts: readonly number[]): PlainSample[] =>
  ts.map((t, i) => ({ seq: firstSeq + i, t, values: [i - 3] }));

export async function commit(store: SampleStore, sessionId: string, samples: readonly PlainSample[], epoch?: number): Promise<void> {
  await store.commitChunks(
    [{ sessionId, batches: [batchOf(samples)] }],
    [{ sessionId, sampleCount: samples.length, lastSeq: samples.at(-1)!.seq, epoch }],
  );
}
