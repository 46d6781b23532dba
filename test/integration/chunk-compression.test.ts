/**
 * The chunk compressor on the real PostgreSQL: a compressed session answers every read (/data
 * in each format, by seq and by time, /latest, raw aggregates, live history) byte for byte as
 * before; an open session's chunks are taken once sealed by its own clock; a reader paging
 * through chunks the compressor joins meanwhile reads each sample once; several sessions' runs
 * go in one transaction, but a session another compressor holds; compressors racing each other,
 * readers and a producer that resends lose and duplicate nothing; a corrupt chunk is left as it
 * is, counted once, and the runs around it are compressed.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { test } from 'node:test';
import pino from 'pino';
import { SampleBatch } from '../../src/samples/sample-batch.ts';
import { ChunkCompressor } from '../../src/storage/chunk-compressor.ts';
import { createPool, type Pool } from '../../src/storage/database.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { startApp } from '../support/app.ts';
import { createSession, liveUrl, makeSamples, RecordingSocket } from '../support/clients.ts';
import { ingest } from '../support/reads.ts';
import { commit, samplesAt, storeWithSession } from '../support/rollup-commits.ts';

const channels = ['ax', 'ay', 'az'];

/** Samples with every kind of value a chunk holds: decimals, full float64, nulls (NaN), -0, and t that jumps back. */
function awkwardBatch(firstSeq: number, count: number): SampleBatch {
  const batch = SampleBatch.allocate(count, channels.length);
  for (let i = 0; i < count; i++) {
    const seq = firstSeq + i;
    batch.columns[i] = seq;
    batch.columns[count + i] = 1_732_000_000_000 + seq * 1.25 - (seq % 97 === 0 ? 500 : 0);
    batch.columns[2 * count + i] = seq % 11 === 0 ? Number.NaN : Number((Math.sin(seq / 30) * 9.81).toFixed(4));
    batch.columns[3 * count + i] = seq % 13 === 0 ? -0 : Math.fround(Math.cos(seq / 7));
    batch.columns[4 * count + i] = Math.sqrt(seq) / 3;
  }
  return batch;
}

/** `commits` commits of 10 samples each, seqs from 1 and t from 0 one apart. */
async function commitTens(store: SampleStore, sessionId: string, commits: number): Promise<void> {
  for (let c = 0; c < commits; c++) {
    await commit(
      store,
      sessionId,
      samplesAt(
        1 + c * 10,
        Array.from({ length: 10 }, (_, i) => c * 10 + i),
      ),
    );
  }
}

/** Each chunk's layout, in seq order: 2 compressed, 0 not (either of the uncompressed layouts). */
async function layouts(pool: Pool, sessionId: string): Promise<number[]> {
  const { rows } = await pool.query('SELECT payload_layout FROM sample_chunks WHERE session_id = $1 ORDER BY last_seq', [sessionId]);
  return rows.map((row) => (row.payload_layout === 2 ? 2 : 0));
}

/** Every seq the session's stored chunks hold, in the order a read takes them. */
async function storedSeqs(store: SampleStore, sessionId: string): Promise<number[]> {
  const seqs: number[] = [];
  for await (const batch of store.readRange(sessionId, 0, Number.MAX_SAFE_INTEGER))
    for (let i = 0; i < batch.count; i++) seqs.push(batch.seq(i));
  return seqs;
}

test('a compressed session answers every read byte for byte as before', async (t) => {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, {
    COMPRESS_INTERVAL_MS: '0',
    READ_CACHE_MAX_BYTES: '0',
    WRITE_ROLLUPS: 'false',
  });
  const pool = createPool(databaseUrl, 4, pino({ level: 'silent' }));
  t.after(() => pool.end());
  const session = await createSession(baseUrl, { channels, nullable: true });
  const { sessionId } = session;
  const store = new SampleStore(pool, { rollups: false });
  for (let firstSeq = 1; firstSeq <= 3000; firstSeq += 150) {
    await store.commitChunks(
      [{ sessionId, batches: [awkwardBatch(firstSeq, 150)] }],
      [{ sessionId, sampleCount: 150, lastSeq: firstSeq + 149 }],
    );
  }
  const ended = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.ingestToken}` },
  });
  assert.equal(ended.status, 200);

  const base = `${baseUrl}/api/v1/sessions/${sessionId}`;
  const paths = [
    ...['json', 'ndjson', 'csv', 'parquet'].map((format) => `/data?format=${format}`),
    '/data?fromSeq=777&toSeq=2222',
    '/data?fromSeq=10&limit=999',
    '/data?fromT=1732000000400&toT=1732000002500&format=csv',
    '/latest',
    '/aggregate?bucketMs=1000',
    '/aggregate?bucketMs=600&fromT=1732000000100&toT=1732000003000',
  ];
  const readAll = async () => {
    const bodies: Buffer[] = [];
    for (const path of paths) {
      const response = await fetch(`${base}${path}`);
      assert.equal(response.status, 200, path);
      bodies.push(Buffer.from(await response.arrayBuffer()));
    }
    const viewer = new RecordingSocket(liveUrl(wsUrl, sessionId, 0));
    await viewer.opened;
    await viewer.waitForClose(10_000).catch(() => undefined);
    viewer.close();
    return { bodies, live: viewer.samples };
  };
  const before = await readAll();
  assert.equal(before.live.length, 3000);

  const compressor = new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 60_000, groupSamples: 1000 });
  const done = await compressor.compress();
  assert.equal(done.samples, 3000);
  assert.deepEqual(await layouts(pool, sessionId), [2, 2, 2, 2]);
  assert.ok(done.bytesAfter < done.bytesBefore, `${done.bytesAfter} of ${done.bytesBefore} bytes`);

  const after = await readAll();
  for (const [i, path] of paths.entries()) assert.ok(after.bodies[i].equals(before.bodies[i]), path);
  assert.deepEqual(after.live, before.live);
  assert.deepEqual(await compressor.compress(), { chunks: 0, samples: 0, bytesBefore: 0, bytesAfter: 0 });
});

test("an open session's chunks are compressed once its own clock has moved past them, in full runs", async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  // 40 commits of 50 samples, t 1 ms apart: lastT is 1,999 ms past the first sample.
  for (let c = 0; c < 40; c++)
    await commit(
      store,
      sessionId,
      samplesAt(
        1 + c * 50,
        Array.from({ length: 50 }, (_, i) => c * 50 + i),
      ),
    );
  const compressor = new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 1_000, groupSamples: 400 });
  const done = await compressor.compress();
  // Sealed: the chunks whose maxT is at most 999, 1,000 samples; in full runs of 400, 800 of them.
  assert.equal(done.samples, 800);
  assert.deepEqual(await layouts(pool, sessionId), [2, 2, ...Array.from({ length: 24 }, () => 0)]);
  assert.deepEqual(
    await storedSeqs(store, sessionId),
    Array.from({ length: 2000 }, (_, i) => i + 1),
  );
});

test("several sessions' runs are compressed in one transaction, but for a session another compressor holds", async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  const others = [randomUUID(), randomUUID(), randomUUID()];
  for (const id of others) await pool.query(`INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', ARRAY['v'])`, [id]);
  for (const id of [sessionId, ...others]) {
    await commitTens(store, id, 30);
    await pool.query("UPDATE sessions SET status = 'ended' WHERE id = $1", [id]);
  }
  // Another compressor's transaction holds the last session (the key chunk-groups.ts locks);
  // released before the test ends, or the pool's end would wait for it.
  const holder = await pool.connect();
  try {
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(hashtextextended($1, $2))', [others[2], 0x636f6d70]);
    const done = await new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0, groupSamples: 100 }).compress();
    assert.equal(done.samples, 900);
    const { rows } = await pool.query(
      `SELECT count(*)::int AS chunks, count(DISTINCT xmin::text)::int AS transactions FROM sample_chunks
        WHERE payload_layout = 2 AND session_id = ANY($1::uuid[])`,
      [[sessionId, ...others]],
    );
    assert.deepEqual(rows[0], { chunks: 9, transactions: 1 });
    assert.deepEqual(
      await layouts(pool, others[2]),
      Array.from({ length: 30 }, () => 0),
    );
  } finally {
    await holder.query('ROLLBACK');
    holder.release();
  }
  assert.equal((await new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0, groupSamples: 100 }).compress()).samples, 300);
  for (const id of [sessionId, ...others]) {
    assert.deepEqual(
      await storedSeqs(store, id),
      Array.from({ length: 300 }, (_, i) => i + 1),
    );
  }
});

test('a reader paging through chunks the compressor joins meanwhile reads each sample once', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  await commitTens(store, sessionId, 40);
  await pool.query("UPDATE sessions SET status = 'ended' WHERE id = $1", [sessionId]);
  const reading = store.readRange(sessionId, 5, 395);
  const seqs: number[] = [];
  const first = await reading.next();
  assert.ok(!first.done);
  // The reader holds a page of 16 chunks; every chunk becomes one before it reads the next page.
  await new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0 }).compress();
  assert.deepEqual(await layouts(pool, sessionId), [2]);
  for (let next: IteratorResult<SampleBatch> = first; !next.done; next = await reading.next())
    for (let i = 0; i < next.value.count; i++) seqs.push(next.value.seq(i));
  assert.deepEqual(
    seqs,
    Array.from({ length: 391 }, (_, i) => i + 5),
  );
});

test('compressors racing each other, readers and a producer that resends lose and duplicate nothing', async (t) => {
  const { baseUrl, databaseUrl } = await startApp(t, { COMPRESS_INTERVAL_MS: '0', COMPRESS_AFTER_MS: '0', READ_CACHE_MAX_BYTES: '0' });
  const pool = createPool(databaseUrl, 6, pino({ level: 'silent' }));
  t.after(() => pool.end());
  const session = await createSession(baseUrl, { channels });
  const sent = makeSamples(1, 2000);
  // Two instances' compressors, in small runs so that they join chunks all along.
  const compressors = [1, 2].map(() => new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0, groupSamples: 64 }));
  let stop = false;
  const racing = compressors.map(async (compressor) => {
    while (!stop) await compressor.compress();
  });
  const reading = (async () => {
    let reads = 0;
    while (!stop || reads === 0) {
      const body = await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data`)).json();
      assert.deepEqual(body.samples, sent.slice(0, body.samples.length));
      reads++;
    }
    return reads;
  })();
  // Each request resends the last 5 samples of the one before, as a producer does after a lost ack.
  for (let from = 0; from < sent.length; from += 20) await ingest(baseUrl, session, sent.slice(Math.max(0, from - 5), from + 20));
  stop = true;
  await Promise.all(racing);
  assert.ok((await reading) > 0);
  await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/end`, {
    method: 'POST',
    headers: { authorization: `Bearer ${session.ingestToken}` },
  });
  await compressors[0].compress();
  const { rows } = await pool.query(
    `SELECT sum(sample_count)::int AS samples, count(*) FILTER (WHERE payload_layout < 2)::int AS plain
       FROM sample_chunks WHERE session_id = $1`,
    [session.sessionId],
  );
  assert.deepEqual(rows[0], { samples: 2000, plain: 0 });
  const body = await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data`)).json();
  assert.deepEqual(body.samples, sent);
});

for (const [damage, spoil] of [
  ['a payload that does not decode', "'\\x00'"],
  // Whole columns short: it decodes, to one channel fewer than the session has.
  ['a payload a column short', 'substring(payload from 1 for octet_length(payload) - sample_count * 8)'],
]) {
  test(`a corrupt chunk (${damage}) is left as it is, counted once, and the runs around it are compressed`, async (t) => {
    const { pool, sessionId, store } = await storeWithSession(t);
    await commitTens(store, sessionId, 30);
    await pool.query(`UPDATE sample_chunks SET payload = ${spoil} WHERE session_id = $1 AND last_seq = 150`, [sessionId]);
    await pool.query("UPDATE sessions SET status = 'ended' WHERE id = $1", [sessionId]);
    let corrupt = 0;
    const logged: unknown[] = [];
    const log = pino({ level: 'error' }, { write: (line: string) => logged.push(JSON.parse(line)) });
    const compressor = new ChunkCompressor({ pool, intervalMs: 60_000, afterMs: 0, log, onCorrupt: () => corrupt++ });
    for (let round = 0; round < 3; round++) await compressor.compress();
    assert.equal(corrupt, 1);
    assert.equal(logged.length, 1);
    assert.deepEqual(await layouts(pool, sessionId), [2, 0, 2]);
  });
}
