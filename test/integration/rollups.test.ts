/**
 * Roll-ups on the real PostgreSQL: after ingest through the real writer (socket frames, a
 * producer that reconnects and resends, HTTP ingest), a nullable session's roll-ups at every
 * resolution equal a reference computed from the samples sent, whatever the order of their t;
 * reads by range give the buckets wholly inside it. At the store: a commit that fails at COMMIT
 * or is fenced leaves no roll-up, and roll-ups left behind (a sprayed t, roll-ups off) are
 * reported as incomplete.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { FencedError } from '../../src/storage/commit-refusal.ts';
import { createPool, type Pool } from '../../src/storage/database.ts';
import { readRollups } from '../../src/storage/rollup-store.ts';
import { blockSpanOf, maxBlocksPerSession, rollupResolutionsMs } from '../../src/storage/rollup-summaries.ts';
import { startApp } from '../support/app.ts';
import { createSession, ingestUrl, RecordingSocket, type Sample } from '../support/clients.ts';
import { fuzzSeed } from '../support/fuzz.ts';
import { commit, samplesAt, storeWithSession } from '../support/rollup-commits.ts';
import { assertSameBuckets, bucketsOfParts, type PlainSample, referenceBuckets } from '../support/rollup-reference.ts';

const channels = ['a', 'b', 'c'];
const finest = rollupResolutionsMs[0];
const log = pino({ level: 'silent' });

/** Samples with gaps in seq, nulls, and a t that mostly rises but jumps back (late) and far ahead. */
function randomSamples(count: number): Sample[] {
  // biome-ignore lint/suspicious/noExplicitAny: nulls, which support/clients.ts's Sample does not type
  const nullable = (sample: Record<string, number | null>) => sample as any as Sample;
  const steps = fc.sample(fc.integer({ min: 0, max: 99 }), { seed: fuzzSeed, numRuns: count * 5 });
  let seq = 0;
  let t = 1_700_000_000_000;
  return Array.from({ length: count }, (_, i) => {
    const roll = steps[i * 5];
    seq += roll < 5 ? 3 : 1;
    if (roll === 99) t -= 3_600_000 + steps[i * 5 + 1] * 1_000;
    else if (roll === 98) t += 90_000_000;
    else if (roll < 10) t -= steps[i * 5 + 1] * 7;
    else t += steps[i * 5 + 1] / 10;
    const value = (k: number) => (steps[i * 5 + 2 + k] < 12 ? null : (steps[i * 5 + 2 + k] - 50) / 8);
    return nullable({ seq, t, a: value(0), b: value(1), c: value(2) });
  });
}

const plain = (samples: readonly Sample[]): PlainSample[] =>
  samples.map((s) => ({ seq: s.seq, t: s.t, values: channels.map((name) => (s[name] === null ? Number.NaN : (s[name] as number))) }));

async function assertRollupsMatch(pool: Pool, sessionId: string, sent: readonly Sample[]): Promise<void> {
  for (const resolutionMs of rollupResolutionsMs) {
    const read = await readRollups(pool, sessionId, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY);
    assert.equal(read.complete, true);
    const buckets = bucketsOfParts(read.parts, resolutionMs, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, channels.length);
    assertSameBuckets(buckets, referenceBuckets(plain(sent), channels.length, resolutionMs), `resolution ${resolutionMs}`);
  }
}

test('roll-ups written by the real writer equal the reference at every resolution, whatever the order of t', async (t) => {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, { RATE_LIMIT_PER_MINUTE: '0' });
  const pool = createPool(databaseUrl, 2, log);
  t.after(() => pool.end());
  const session = await createSession(baseUrl, { channels, nullable: true });
  const sent = randomSamples(3_000);
  const frames = [37, 250, 1, 400, 90];

  // Frames committed one by one, the one before each resent (duplicates, dropped and acked again).
  const first = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await first.opened;
  let at = 0;
  let previous: Sample[] = [];
  for (let i = 0; at < 1_500; i++) {
    const frame = sent.slice(at, at + frames[i % frames.length]);
    if (previous.length > 0) first.send({ samples: previous });
    first.send({ samples: frame });
    await first.waitForAck(frame.at(-1)!.seq);
    previous = frame;
    at += frame.length;
  }
  first.close();
  await first.waitForClose();

  // Another producer takes the session over (a new epoch) and resends from before its lastSeq.
  const second = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
  await second.opened;
  const resend = sent.slice(at - 100, 2_200);
  second.send({ samples: resend.slice(0, 400) });
  second.send({ samples: resend.slice(400) });
  await second.waitForAck(resend.at(-1)!.seq);
  assert.deepEqual(second.ofType('error'), []);
  second.close();
  await second.waitForClose();

  // The rest over HTTP, overlapping what is stored.
  const response = await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/samples`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${session.ingestToken}` },
    body: JSON.stringify({ samples: sent.slice(2_150) }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  assert.equal((await response.json()).duplicates, 50);

  await assertRollupsMatch(pool, session.sessionId, sent);

  // A range read gives exactly the buckets wholly inside it.
  const ts = sent.map((s) => s.t).sort((x, y) => x - y);
  for (const resolutionMs of rollupResolutionsMs) {
    const [fromT, toT] = [ts[300] + 0.5, ts[2_700]];
    const read = await readRollups(pool, session.sessionId, resolutionMs, fromT, toT);
    const expected = referenceBuckets(plain(sent), channels.length, resolutionMs).filter((b) => b.t >= fromT && b.t + resolutionMs <= toT);
    assertSameBuckets(bucketsOfParts(read.parts, resolutionMs, fromT, toT, channels.length), expected, `range at ${resolutionMs}`);
  }
});

async function rollupRows(pool: Pool, sessionId: string): Promise<number> {
  const { rows } = await pool.query('SELECT count(*)::int AS n FROM sample_rollups WHERE session_id = $1', [sessionId]);
  return rows[0].n;
}

test('a commit that fails at COMMIT, after its COPY and roll-ups, leaves no roll-up', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  await pool.query(`CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$`);
  await pool.query(`CREATE CONSTRAINT TRIGGER refuse AFTER INSERT ON sample_chunks DEFERRABLE INITIALLY DEFERRED
                    FOR EACH ROW EXECUTE FUNCTION refuse()`);
  const samples = samplesAt(1, [10, 20, 150, 700]);
  await assert.rejects(commit(store, sessionId, samples), /refused at commit/);
  assert.equal(await rollupRows(pool, sessionId), 0);
  await pool.query('DROP TRIGGER refuse ON sample_chunks');
  await commit(store, sessionId, samples);
  // One finest block touched: one part; the coarser resolutions are rolled up from it.
  assert.equal(await rollupRows(pool, sessionId), 1);
  const read = await readRollups(pool, sessionId, finest, 0, 1_200);
  assert.equal(read.complete, true);
  assertSameBuckets(bucketsOfParts(read.parts, finest, 0, 1_200, 1), referenceBuckets(samples, 1, finest), 'after the commit');
});

test('a fenced commit writes no roll-up', async (t) => {
  const { pool, sessionId, store } = await storeWithSession(t);
  await pool.query('UPDATE sessions SET producer_epoch = 7 WHERE id = $1', [sessionId]);
  await assert.rejects(commit(store, sessionId, samplesAt(1, [1, 2, 3]), 6), FencedError);
  assert.equal(await rollupRows(pool, sessionId), 0);
  await commit(store, sessionId, samplesAt(1, [1, 2, 3]), 7);
  assert.equal(bucketsOfParts((await readRollups(pool, sessionId, 600, 0, 600)).parts, 600, 0, 600, 1)[0].count, 3);
});

test('roll-ups left behind are reported incomplete: a t sprayed over too many blocks, and roll-ups off', async (t) => {
  const sprayed = await storeWithSession(t);
  await commit(sprayed.store, sprayed.sessionId, samplesAt(1, [5, 50]));
  assert.equal((await readRollups(sprayed.pool, sprayed.sessionId, finest, 0, finest)).complete, true);
  const spray = Array.from({ length: maxBlocksPerSession + 1 }, (_, i) => (i + 1) * blockSpanOf(finest));
  await commit(sprayed.store, sprayed.sessionId, samplesAt(3, spray));
  const read = await readRollups(sprayed.pool, sprayed.sessionId, finest, 0, finest);
  assert.equal(read.complete, false);
  // What was written before stays; the sprayed commit added nothing to it.
  assert.equal(bucketsOfParts(read.parts, finest, 0, finest, 1)[0].count, 2);
  assert.equal(await rollupRows(sprayed.pool, sprayed.sessionId), 1);

  const off = await storeWithSession(t, false);
  await commit(off.store, off.sessionId, samplesAt(1, [5, 50]));
  assert.deepEqual(await readRollups(off.pool, off.sessionId, finest, 0, finest), { complete: false, parts: [] });
});
