/**
 * The retention job on the real PostgreSQL, its clock moved past the legacy partition's cut:
 * it creates the days ahead, and the day of a chunk that found no partition (the gap: it went
 * to the DEFAULT partition) with that chunk moved in; it drops the partitions past
 * RETENTION_DAYS, deletes the chunks past a session's own retention in small batches, and the
 * roll-ups past ROLLUP_RETENTION_DAYS; one instance per round does it.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import pg from 'pg';
import { RetentionJob, type RetentionSettings } from '../../src/maintenance/retention-job.ts';
import { dayMs, dayPartitionName, listPartitions } from '../../src/storage/chunk-partitions.ts';
import type { Pool } from '../../src/storage/database.ts';
import { deleteExpiredRollups } from '../../src/storage/retention-deletes.ts';
import { compactBatch } from '../../src/storage/rollup-compactor.ts';
import { startApp } from '../support/app.ts';
import { createSession, endSession } from '../support/clients.ts';
import { ingest, read, readUrls } from '../support/reads.ts';
import { commit, samplesAt, storeWithSession } from '../support/rollup-commits.ts';

const settings: RetentionSettings = { days: 0, rollupDays: 0, aheadDays: 2, intervalMs: 60_000 };

async function legacyCut(pool: Pool): Promise<number> {
  const { rows } = await pool.query<{ ms: number }>(
    'SELECT (extract(epoch FROM legacy_cut) * 1000)::float8 AS ms FROM sample_chunk_partitioning',
  );
  return rows[0].ms;
}

async function chunksOf(pool: Pool, sessionId: string): Promise<Array<[string, number]>> {
  const { rows } = await pool.query<{ partition: string; last_seq: string }>(
    'SELECT tableoid::regclass::text AS partition, last_seq FROM sample_chunks WHERE session_id = $1 ORDER BY last_seq',
    [sessionId],
  );
  return rows.map((row) => [row.partition, Number(row.last_seq)]);
}

async function retentionGeneration(pool: Pool): Promise<number> {
  return Number((await pool.query<{ generation: string }>('SELECT generation FROM sample_retention')).rows[0].generation);
}

const storedAt = (pool: Pool, sessionId: string, lastSeq: number, at: number) =>
  pool.query('UPDATE sample_chunks SET stored_at = $3 WHERE session_id = $1 AND last_seq = $2', [sessionId, lastSeq, new Date(at)]);

test('days ahead are created, a chunk in a gap is moved into its day, expired days are dropped', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const start = (await legacyCut(pool)) + 10 * dayMs;
  await pool.query('UPDATE sessions SET created_at = $2 WHERE id = $1', [sessionId, new Date(start - 30 * dayMs)]);
  let now = start;
  const job = new RetentionJob({ pool, settings: { ...settings, days: 3 }, now: () => now });
  t.after(() => job.close(0));

  // Ten days after the cut with no partition but the legacy one: a commit now goes to DEFAULT.
  await commit(store, sessionId, samplesAt(1, [1, 2]));
  await storedAt(pool, sessionId, 2, start);
  assert.deepEqual(await chunksOf(pool, sessionId), [['sample_chunks_default', 2]]);
  const first = await job.run();
  assert.equal(first.leader, true);
  assert.equal(first.partitionsCreated, 3);
  assert.equal(first.partitionsDropped, 1, 'the legacy partition, its cut 10 days back');
  assert.deepEqual(await chunksOf(pool, sessionId), [[dayPartitionName(start), 2]]);
  assert.deepEqual(
    (await listPartitions(pool)).map((p) => p.name),
    [0, 1, 2].map((d) => dayPartitionName(start + d * dayMs)).concat('sample_chunks_default'),
  );

  // Three days later the first day has ended three days back (and not before): dropped.
  await commit(store, sessionId, samplesAt(3, [3]));
  await storedAt(pool, sessionId, 3, start + 2 * dayMs);
  now = start + 3 * dayMs + 1;
  const second = await job.run();
  assert.equal(second.partitionsDropped, 0, 'its end, start + 1 day, is 2 days back');
  now = start + 4 * dayMs;
  const generation = await retentionGeneration(pool);
  const third = await job.run();
  assert.deepEqual([third.partitionsCreated, third.partitionsDropped, third.dropsDeferred], [1, 1, 0]);
  assert.equal(await retentionGeneration(pool), generation + 1, 'a drop moves every session version (migration 017)');
  assert.deepEqual(await chunksOf(pool, sessionId), [[dayPartitionName(start + 2 * dayMs), 3]]);
});

test('a drop that does not get its lock in time leaves ingest alone and is tried again next round', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const now = (await legacyCut(pool)) + 10 * dayMs;
  const job = new RetentionJob({ pool, settings: { ...settings, days: 3 }, now: () => now });
  t.after(() => job.close(0));
  const reader = await pool.connect();
  try {
    // A long read holds the parent: the drop would queue behind it, and every commit behind the drop.
    await reader.query('BEGIN');
    await reader.query('SELECT count(*) FROM sample_chunks');
    const round = await job.run();
    assert.deepEqual([round.partitionsCreated, round.createsDeferred, round.partitionsDropped, round.dropsDeferred], [0, 3, 0, 1]);
    await commit(store, sessionId, samplesAt(1, [1]));
  } finally {
    await reader.query('COMMIT');
    reader.release();
  }
  const next = await job.run();
  assert.equal(next.partitionsCreated, 3);
  assert.ok(next.partitionsDropped >= 1, 'the legacy partition, and the day of that commit if it went to DEFAULT');
});

test("a session's own retention deletes its older chunks in batches, and nobody else's", async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const other = randomUUID();
  await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['v'])`, [other]);
  for (const id of [sessionId, other]) {
    await pool.query(`UPDATE sessions SET created_at = now() - interval '30 days' WHERE id = $1`, [id]);
    for (let seq = 1; seq <= 5; seq++) {
      await commit(store, id, samplesAt(seq, [seq]));
      await storedAt(pool, id, seq, Date.now() - (6 - seq) * dayMs + 3_600_000);
    }
  }
  await pool.query('UPDATE sessions SET retention_days = 2 WHERE id = $1', [sessionId]);
  const job = new RetentionJob({ pool, settings, budget: { batchRows: 1, maxBatches: 2 } });
  t.after(() => job.close(0));
  assert.equal((await job.run()).sessionChunks, 2, 'two batches of one row in a round');
  assert.equal((await job.run()).sessionChunks, 1);
  assert.equal((await job.run()).sessionChunks, 0);
  assert.deepEqual(
    (await chunksOf(pool, sessionId)).map(([, seq]) => seq),
    [4, 5],
  );
  assert.equal((await chunksOf(pool, other)).length, 5);
});

test('sessions with nothing expired do not spend the budget of those after them', async (t) => {
  const { pool, store } = await storeWithSession(t);
  // Listed by id: the two with nothing expired come first.
  const ids = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002', 'ffffffff-0000-4000-8000-000000000003'];
  for (const id of ids) {
    await pool.query(
      `INSERT INTO sessions (id, token_hash, channels, retention_days, created_at)
       VALUES ($1, '\\x00', ARRAY['v'], 2, now() - interval '30 days')`,
      [id],
    );
    await commit(store, id, samplesAt(1, [1]));
  }
  await storedAt(pool, ids[2], 1, Date.now() - 5 * dayMs);
  const job = new RetentionJob({ pool, settings, budget: { batchRows: 10, maxBatches: 2 } });
  t.after(() => job.close(0));
  assert.equal((await job.run()).sessionChunks, 1);
  assert.deepEqual(await chunksOf(pool, ids[2]), []);
  assert.equal((await chunksOf(pool, ids[0])).length, 1);
});

test('a read cached before retention removed samples is not served after, nor its ETag answered 304', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, { RETENTION_INTERVAL_MS: '0' });
  // Ended in the test, not in an after hook: those run after the app's, which drops the database.
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
  try {
    const session = await createSession(baseUrl, { channels: ['ax', 'ay', 'az'], retentionDays: 1 });
    for (let seq = 1; seq <= 3; seq++) await ingest(baseUrl, session, [{ seq, t: seq, ax: seq, ay: 0, az: 0 }]);
    // Ended, so that nothing but retention moves what its reads answer.
    await endSession(baseUrl, session.sessionId, session.ingestToken);
    const { data } = readUrls(baseUrl, session.sessionId);
    const before = await read(data);
    assert.equal((JSON.parse(before.body) as { samples: unknown[] }).samples.length, 3);
    assert.equal((await read(data, { 'if-none-match': before.etag! })).status, 304, 'cached, before retention');

    await storedAt(pool, session.sessionId, 1, Date.now() - 2 * dayMs);
    assert.equal((await new RetentionJob({ pool, settings }).run()).sessionChunks, 1);

    const revalidated = await read(data, { 'if-none-match': before.etag! });
    assert.equal(revalidated.status, 200, 'the old tag no longer matches');
    assert.notEqual(revalidated.etag, before.etag);
    const seqs = (JSON.parse(revalidated.body) as { samples: Array<{ seq: number }> }).samples.map((sample) => sample.seq);
    assert.deepEqual(seqs, [2, 3], 'the expired sample is gone from the answer, not served from the cache');
  } finally {
    await pool.end();
  }
});

test('roll-ups go by ROLLUP_RETENTION_DAYS, by t, once compacted', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const now = Date.now();
  await commit(store, sessionId, samplesAt(1, [now - 20 * dayMs, now - 19 * dayMs, now - dayMs, now]));
  const job = new RetentionJob({ pool, settings: { ...settings, days: 5, rollupDays: 10 }, now: () => now });
  t.after(() => job.close(0));
  assert.equal((await job.run()).rollups, 0, 'pending parts wait for the compactor');
  const client = await pool.connect();
  try {
    while ((await compactBatch(client, 256)).blocks > 0);
  } finally {
    client.release();
  }
  const before = await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM sample_rollups WHERE session_id = $1', [sessionId]);
  const round = await job.run();
  assert.ok(round.rollups > 0);
  const { rows } = await pool.query<{ block_t: number; resolution_ms: number }>(
    'SELECT block_t, resolution_ms FROM sample_rollups WHERE session_id = $1',
    [sessionId],
  );
  assert.equal(rows.length, before.rows[0].n - round.rollups);
  for (const row of rows) assert.ok(row.block_t + 64 * row.resolution_ms > now - 10 * dayMs, JSON.stringify(row));
});

test('the roll-up step reads only the expired parts, from their index, however many are kept (EXPLAIN)', async (t) => {
  const { pool } = await storeWithSession(t);
  const now = Date.now();
  // 400 sessions, each with 50 compacted parts at every resolution in the last 50 hours: 60,000 kept.
  await pool.query(
    `INSERT INTO sessions (id, token_hash, channels, first_t, last_t)
     SELECT gen_random_uuid(), '\\x00', ARRAY['v'], $1::float8 - 50 * 3600000, $1 FROM generate_series(1, 400)`,
    [now],
  );
  const parts = (sessions: string, hoursAgo: string, pending = false) =>
    pool.query(
      `INSERT INTO sample_rollups (session_id, resolution_ms, block_t, pending, summary)
       SELECT s.id, r, floor(($1::float8 - k * 3600000::float8) / (r * 64)) * r * 64, $2, '\\x00'
         FROM (${sessions}) AS s, unnest(ARRAY[600, 60000, 3600000]) AS r, ${hoursAgo} AS hours (k)`,
      [now, pending],
    );
  await parts('SELECT id FROM sessions', 'generate_series(0, 49)');
  // 30 days old, past ROLLUP_RETENTION_DAYS=10: 3 parts a resolution of 10 sessions, and the pending parts of one, which
  // the compactor still needs.
  await parts('SELECT id FROM sessions ORDER BY id LIMIT 10', '(VALUES (720), (721), (722))');
  await pool.query(
    'UPDATE sessions SET first_t = $1::float8 - 722 * 3600000::float8 WHERE id IN (SELECT id FROM sessions ORDER BY id LIMIT 10)',
    [now],
  );
  await parts('SELECT id FROM sessions ORDER BY id LIMIT 1', '(VALUES (720))', true);
  await pool.query('ANALYZE sessions, sample_rollups');

  const statements: Array<{ text: string; values: unknown[] }> = [];
  const plans: string[][] = [];
  const client = await pool.connect();
  try {
    const recording = {
      query: (text: string, values: unknown[]) => {
        statements.push({ text, values });
        return client.query(text, values);
      },
    } as unknown as pg.ClientBase;
    assert.equal(await deleteExpiredRollups(recording, now, 10, { batchRows: 1_000, maxBatches: 10 }), 90);
    for (const { text, values } of statements) {
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (COSTS OFF) ${text}`, values);
      plans.push(rows.map((row) => row['QUERY PLAN']));
    }
  } finally {
    client.release();
  }
  const old = await pool.query<{ pending: boolean }>('SELECT pending FROM sample_rollups WHERE block_t < $1', [now - 10 * dayMs]);
  assert.deepEqual(
    old.rows.map((row) => row.pending),
    [true, true, true],
    'only the pending parts, one a resolution',
  );

  assert.equal(plans.length, 3, 'a batch a resolution');
  for (const plan of plans) {
    const text = plan.join('\n');
    // Found by the index (an Index Scan, or a Bitmap Index Scan under a Bitmap Heap Scan); the DELETE goes to them by ctid.
    assert.match(text, /Index Scan (?:using|on) sample_rollups_expiry\b/, text);
    assert.doesNotMatch(text, /Seq Scan on sample_rollups\b| on sessions\b/, text);
  }
});

test('two instances: one does the round, the other skips it', async (t) => {
  const { pool } = await storeWithSession(t);
  const [a, b] = [new RetentionJob({ pool, settings }), new RetentionJob({ pool, settings })];
  t.after(() => Promise.all([a.close(0), b.close(0)]));
  const rounds = await Promise.all([a.run(), b.run(), a.run()]);
  assert.ok(rounds.some((round) => round.leader));
  const holder = await pool.connect();
  try {
    await holder.query('SELECT pg_advisory_lock($1)', [0x52455445]);
    assert.equal((await b.run()).leader, false);
  } finally {
    await holder.query('SELECT pg_advisory_unlock($1)', [0x52455445]);
    holder.release();
  }
});

test('the app runs a round at start: partitions ahead, and the metrics say so', async (t) => {
  const { baseUrl } = await startApp(t, { PARTITIONS_AHEAD_DAYS: '3' });
  let text = '';
  for (let tries = 0; tries < 100 && !/^wavehouse_retention_last_round_timestamp_seconds [1-9]/m.test(text); tries++) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    text = await (await fetch(`${baseUrl}/metrics`)).text();
  }
  const last = Number(/^wavehouse_retention_last_round_timestamp_seconds (\S+)$/m.exec(text)?.[1]);
  assert.ok(Math.abs(last - Date.now() / 1000) < 60, text);
  // Today through 3 days ahead, covered by the legacy partition or days of their own, and the default.
  assert.ok(Number(/^wavehouse_sample_partitions (\S+)$/m.exec(text)?.[1]) >= 2, text);
});

test('RETENTION_INTERVAL_MS=0: this instance runs no round', async (t) => {
  const { baseUrl } = await startApp(t, { RETENTION_INTERVAL_MS: '0' });
  await new Promise((resolve) => setTimeout(resolve, 300));
  const text = await (await fetch(`${baseUrl}/metrics`)).text();
  assert.match(text, /^wavehouse_retention_last_round_timestamp_seconds 0$/m);
});
