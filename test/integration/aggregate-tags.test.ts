/**
 * An aggregate's ETag is weak (RFC 9110, section 8.8.1): two answers of one session version may
 * differ in their bytes, as the roll-up compactor regroups float sums (storage/rollup-store.ts),
 * so instances that make them apart (a Redis entry expired, two misses at once) answer
 * equivalent bodies under one tag, not byte-equal ones. /data stays strong: one tag, one body.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pg from 'pg';
import { RollupCompactor } from '../../src/storage/rollup-compactor.ts';
import { startApp } from '../support/app.ts';
import { createSession, makeSamples } from '../support/clients.ts';
import { ingest, read, readUrls } from '../support/reads.ts';

test('an aggregate keeps its tag when a compaction regroups its sums, and the tag says so by being weak', async (t) => {
  // No cache: each read is made anew, as on an instance whose cache does not hold it.
  const { baseUrl, databaseUrl } = await startApp(t, { READ_CACHE_MAX_BYTES: '0', ROLLUP_COMPACT_INTERVAL_MS: '0' });
  const session = await createSession(baseUrl);
  // A commit each, t 1.25 ms apart: parts over several blocks of the finest resolution.
  for (let seq = 1; seq <= 10_000; seq += 50) await ingest(baseUrl, session, makeSamples(seq, 50));
  const { aggregate, data } = readUrls(baseUrl, session.sessionId);
  const url = aggregate.replace(/\?.*$/, '?bucketMs=60000&fn=count,sum,avg');
  const before = await read(url);

  const pool = new pg.Pool({ connectionString: databaseUrl, max: 1 });
  try {
    const compactor = new RollupCompactor({ pool, intervalMs: 60_000 });
    while ((await compactor.compact()).parts > 0);
  } finally {
    await pool.end();
  }
  const after = await read(url);
  assert.notEqual(after.body, before.body, 'the sums regrouped differ in their last digits');
  assert.equal(JSON.parse(after.body).buckets.length, JSON.parse(before.body).buckets.length);
  assert.equal(after.etag, before.etag, 'a compaction moves no version');
  assert.match(before.etag ?? '', /^W\/"[^"]+"$/, 'so the tag is weak');
  assert.equal((await read(url, { 'if-none-match': before.etag! })).status, 304);

  const dataTag = (await read(data)).etag;
  assert.match(dataTag ?? '', /^"[^"]+"$/, '/data answers one body per tag: a strong tag');
  assert.equal((await read(data, { 'if-none-match': `W/${dataTag}` })).status, 304);
});
