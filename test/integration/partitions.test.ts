/**
 * The time partitions of sample storage (migration 015, storage/chunk-partitions.ts): an
 * install holding data written by the code before it migrates while commits go on, and reads
 * every sample back; a read touches only the partitions since its session's creation (EXPLAIN);
 * a chunk at or below a session's stored lastSeq is refused whatever partition it would go to.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import { dayMs, ensurePartitions, listPartitions } from '../../src/storage/chunk-partitions.ts';
import { OverlapError } from '../../src/storage/commit-refusal.ts';
import type { Pool } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrations.ts';
import type { SampleStore } from '../../src/storage/sample-store.ts';
import { databaseBefore } from '../support/database.ts';
import { commit, samplesAt, storeWithSession } from '../support/rollup-commits.ts';

async function newSession(pool: Pool): Promise<string> {
  const id = randomUUID();
  await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['v'])`, [id]);
  return id;
}

async function readAll(store: SampleStore, sessionId: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const batch of store.readRange(sessionId, 0, Number.MAX_SAFE_INTEGER)) {
    for (let i = 0; i < batch.count; i++) seqs.push(batch.seq(i));
  }
  return seqs;
}

const seqsFrom = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

test('an install with data written before migrates while commits go on, and every sample reads back', async (t) => {
  const pool = await databaseBefore(t, 15, 6);
  const { SampleStore } = await import('../../src/storage/sample-store.ts');
  const store = new SampleStore(pool);
  const sessions = [await newSession(pool), await newSession(pool)];
  for (const [i, sessionId] of sessions.entries()) {
    for (let c = 0; c < 20; c++) await commit(store, sessionId, samplesAt(1 + c * 50, seqsFrom(1_000 * i + c * 50, 50)));
  }
  // Commits on one session all through the migration: none may fail, none may be lost.
  let next = 1 + 20 * 50;
  let migrating = true;
  const writing = (async () => {
    while (migrating) {
      await commit(store, sessions[1], samplesAt(next, seqsFrom(next, 10)));
      next += 10;
    }
  })();
  const outcome = await migrate(pool);
  migrating = false;
  await writing;
  assert.equal(outcome.applied[0], '015_time_partitions', 'the database stood just before 015');

  const { rows } = await pool.query<{ relkind: string }>(`SELECT relkind FROM pg_class WHERE relname = 'sample_chunks'`);
  assert.equal(rows[0].relkind, 'p', 'sample_chunks is partitioned');
  const partitions = await listPartitions(pool);
  const cut = (
    await pool.query<{ ms: number }>('SELECT (extract(epoch FROM legacy_cut) * 1000)::float8 AS ms FROM sample_chunk_partitioning')
  ).rows[0].ms;
  assert.deepEqual(
    partitions.map((p) => [p.name, p.from, p.to]),
    [
      ['sample_chunks_legacy', Number.NEGATIVE_INFINITY, cut],
      ['sample_chunks_default', null, null],
    ],
  );
  assert.deepEqual(await readAll(store, sessions[0]), seqsFrom(1, 1_000));
  assert.deepEqual(await readAll(store, sessions[1]), seqsFrom(1, next - 1));

  // New writes: into the legacy partition until the cut, into a day partition after it.
  await commit(store, sessions[0], samplesAt(1_001, [5, 6]));
  const client = await pool.connect();
  try {
    assert.deepEqual(await ensurePartitions(client, cut, 1), { created: 2, deferred: 0 });
  } finally {
    client.release();
  }
  await pool.query(
    `INSERT INTO sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, payload, min_t, max_t, stored_at)
     SELECT session_id, 1003, 1003, 1, payload_layout, substring(payload FROM 1 FOR 16), min_t, min_t, $2
       FROM sample_chunks WHERE session_id = $1 AND last_seq = 1002`,
    [sessions[0], new Date(cut + 1_000)],
  );
  const where = await pool.query<{ partition: string; last_seq: string }>(
    'SELECT tableoid::regclass::text AS partition, last_seq FROM sample_chunks WHERE session_id = $1 AND last_seq > 1000 ORDER BY last_seq',
    [sessions[0]],
  );
  const firstDay = new Date(cut).toISOString().slice(0, 10).replaceAll('-', '');
  assert.deepEqual(
    where.rows.map((row) => [row.partition, Number(row.last_seq)]),
    [
      ['sample_chunks_legacy', 1002],
      [`sample_chunks_p${firstDay}`, 1003],
    ],
  );
  assert.equal((await readAll(store, sessions[0])).length, 1_003);
});

test('a read, by time too, touches only the partitions since its session was created (EXPLAIN)', async (t) => {
  const { pool, sessionId: older, store } = await storeWithSession(t);
  const cut = (
    await pool.query<{ ms: number }>('SELECT (extract(epoch FROM legacy_cut) * 1000)::float8 AS ms FROM sample_chunk_partitioning')
  ).rows[0].ms;
  const client = await pool.connect();
  try {
    assert.deepEqual(await ensurePartitions(client, cut, 4), { created: 5, deferred: 0 });
  } finally {
    client.release();
  }
  // Two sessions as if created and written on the second and fourth days after the cut.
  const recent = await newSession(pool);
  await commit(store, older, samplesAt(1, [1, 2, 3]));
  await commit(store, recent, samplesAt(1, [10, 20, 30]));
  for (const [sessionId, day] of [
    [older, 1],
    [recent, 3],
  ] as const) {
    const at = new Date(cut + day * dayMs + 3_600_000);
    await pool.query('UPDATE sessions SET created_at = $2 WHERE id = $1', [sessionId, at]);
    await pool.query('UPDATE sample_chunks SET stored_at = $2 WHERE session_id = $1', [sessionId, at]);
  }
  assert.deepEqual(await readAll(store, older), [1, 2, 3]);
  assert.deepEqual(await readAll(store, recent), [1, 2, 3]);

  const scanned = async (sessionId: string) => {
    const { rows } = await pool.query<{ 'QUERY PLAN': string }>(
      `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF)
       SELECT last_seq FROM sample_chunks WHERE session_id = $1 AND min_t < 100 AND max_t >= 0
          AND stored_at >= (SELECT created_at FROM sessions WHERE id = $1)`,
      [sessionId],
    );
    // Run-time pruning: a partition the created_at subquery rules out is "never executed".
    const names = rows
      .map((row) => row['QUERY PLAN'])
      .filter((line) => !/never executed|Bitmap Index Scan/.test(line))
      .map((line) => /Scan (?:using \S+ )?on (sample_chunks_\w+)/.exec(line)?.[1])
      .filter((name) => name !== undefined);
    return [...new Set(names)];
  };
  const day = (n: number) => `sample_chunks_p${new Date(cut + n * dayMs).toISOString().slice(0, 10).replaceAll('-', '')}`;
  assert.deepEqual(await scanned(recent), [day(3), day(4), 'sample_chunks_default']);
  assert.deepEqual(await scanned(older), [day(1), day(2), day(3), day(4), 'sample_chunks_default']);
});

test('a chunk at or below the stored lastSeq is refused, and the flush retried rather than stored twice', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  await commit(store, sessionId, samplesAt(1, seqsFrom(0, 10)));
  // Keys are a partition's own, and these chunks' last seqs differ anyway: only the commit sees the overlap.
  await pool.query(`UPDATE sessions SET created_at = now() - interval '2 days' WHERE id = $1`, [sessionId]);
  await pool.query(`UPDATE sample_chunks SET stored_at = now() - interval '1 day' WHERE session_id = $1`, [sessionId]);
  await assert.rejects(commit(store, sessionId, samplesAt(5, seqsFrom(0, 11))), OverlapError);
  await commit(store, sessionId, samplesAt(11, seqsFrom(10, 5)));
  assert.deepEqual(await readAll(store, sessionId), seqsFrom(1, 15));
  const { rows } = await pool.query('SELECT sample_count, last_seq FROM sessions WHERE id = $1', [sessionId]);
  assert.deepEqual(rows[0], { sample_count: '15', last_seq: '15' });
});
