/**
 * Reads by time and the latest sample, on the real PostgreSQL: /data with fromT (inclusive) and
 * toT (exclusive) in every format, against a reference filter of what was sent, for sessions
 * whose t jumps back and forth; chunks outside the range never read; the backfill of chunks
 * stored before migration 008; /latest; and firstT/lastT on the Session.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import pino from 'pino';
import { createPool } from '../../src/storage/database.ts';
import { migrate } from '../../src/storage/migrations.ts';
import { SampleStore } from '../../src/storage/sample-store.ts';
import { type RunningApp, startApp } from '../support/app.ts';
import {
  type CreatedSession,
  createSession,
  type DataFormat,
  dataMediaTypes,
  ingestUrl,
  makeSamples,
  parseDataBody,
  RecordingSocket,
  type Sample,
} from '../support/clients.ts';
import { databaseBefore } from '../support/database.ts';
import { fuzzParameters } from '../support/fuzz.ts';

const channels = ['ax', 'ay', 'az'];
const log = pino({ level: 'silent' });

let running: RunningApp;
const teardown: Array<() => Promise<void>> = [];

before(async () => {
  running = await startApp({ after: (fn) => void teardown.push(fn as () => Promise<void>) }, { RATE_LIMIT_PER_MINUTE: '0' });
});
after(async () => {
  for (const fn of teardown.reverse()) await fn();
});

/** Samples whose t mostly rises but jumps back (a clock reset) and forward, and repeats. */
function jumpySamples(count: number, seed: number): Sample[] {
  let t = 1_000 + (seed % 7);
  return makeSamples(1, count).map((sample, i) => {
    const step = (i * 7919 + seed) % 23;
    if (step === 0) t -= 400;
    else if (step === 1) t += 5_000;
    else if (step > 3) t += step / 4;
    return { ...sample, t };
  });
}

/** Sends `samples` a frame at a time, each committed (so a chunk of its own) before the next. */
async function ingest(session: CreatedSession, samples: readonly Sample[], frameSizes: readonly number[]): Promise<void> {
  const producer = new RecordingSocket(ingestUrl(running.wsUrl, session.sessionId, session.ingestToken));
  await producer.opened;
  for (let at = 0, i = 0; at < samples.length; i++) {
    const frame = samples.slice(at, at + frameSizes[i % frameSizes.length]);
    producer.send({ samples: frame });
    await producer.waitForAck(frame.at(-1)!.seq);
    at += frame.length;
  }
  producer.close();
}

async function read(sessionId: string, query: Record<string, string>, format: DataFormat) {
  const response = await fetch(`${running.baseUrl}/api/v1/sessions/${sessionId}/data?${new URLSearchParams({ ...query, format })}`);
  const body = await response.text();
  return { status: response.status, body, next: response.headers.get('wavehouse-next-from-seq') };
}

const ts = (samples: readonly Sample[]) => samples.map((sample) => sample.t);

describe('GET /sessions/{id}/data?fromT=&toT=', () => {
  let session: CreatedSession;
  let sent: Sample[];

  before(async () => {
    session = await createSession(running.baseUrl);
    sent = jumpySamples(600, 11);
    await ingest(session, sent, [37, 120, 1, 64]);
  });

  test('answers exactly the samples with fromT <= t < toT, in seq order, in every format, paged by limit', async () => {
    const bound = fc.oneof(
      fc.constantFrom(...ts(sent)),
      fc.constantFrom(...ts(sent)).map((t) => t + 0.125),
      fc.double({ min: 0, max: 20_000, noNaN: true }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.option(bound, { nil: undefined }),
        fc.option(bound, { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 700 }), { nil: undefined }),
        fc.option(fc.integer({ min: 0, max: 650 }), { nil: undefined }),
        fc.constantFrom<DataFormat>('json', 'ndjson', 'csv'),
        async (a, b, limit, fromSeq, format) => {
          const [fromT, toT] = a !== undefined && b !== undefined && a > b ? [b, a] : [a, b];
          const query: Record<string, string> = {};
          if (fromT !== undefined) query.fromT = String(fromT);
          if (toT !== undefined) query.toT = String(toT);
          if (limit !== undefined) query.limit = String(limit);
          if (fromSeq !== undefined) query.fromSeq = String(fromSeq);
          const inRange = sent.filter(
            (s) => s.seq >= (fromSeq ?? 0) && s.t >= (fromT ?? Number.NEGATIVE_INFINITY) && s.t < (toT ?? Number.POSITIVE_INFINITY),
          );
          const expected = limit === undefined ? inRange : inRange.slice(0, limit);
          const nextFromSeq = expected.length < inRange.length ? expected.at(-1)!.seq + 1 : null;
          const { status, body, next } = await read(session.sessionId, query, format);
          assert.equal(status, 200, body);
          const answer = parseDataBody(format, body, channels);
          assert.deepStrictEqual(answer.samples, expected, JSON.stringify(query));
          if (format === 'json') assert.equal(answer.nextFromSeq, nextFromSeq);
          assert.equal(next, nextFromSeq === null ? null : String(nextFromSeq));
        },
      ),
      fuzzParameters(60),
    );
  });

  test('fromT is inclusive and toT exclusive, to the exact float64 of a sample', async () => {
    const sample = sent[250];
    const same = sent.filter((s) => s.t === sample.t);
    for (const format of Object.keys(dataMediaTypes) as DataFormat[]) {
      const from = await read(session.sessionId, { fromT: String(sample.t), toT: String(sample.t + 1e-9) }, format);
      assert.deepStrictEqual(parseDataBody(format, from.body, channels).samples, same);
      const upTo = await read(session.sessionId, { fromT: String(sample.t - 1e-9), toT: String(sample.t) }, format);
      assert.deepStrictEqual(parseDataBody(format, upTo.body, channels).samples, []);
      const empty = await read(session.sessionId, { fromT: String(sample.t), toT: String(sample.t) }, format);
      assert.deepStrictEqual(parseDataBody(format, empty.body, channels).samples, []);
    }
  });

  test('follows nextFromSeq page by page to exactly the samples in the range', async () => {
    const [fromT, toT] = [1_100, 9_000];
    const pages: Sample[] = [];
    for (let fromSeq: string | null = '0'; fromSeq !== null; ) {
      const { body, next } = await read(session.sessionId, { fromT: String(fromT), toT: String(toT), fromSeq, limit: '50' }, 'json');
      pages.push(...parseDataBody('json', body, channels).samples);
      fromSeq = next;
    }
    assert.deepStrictEqual(
      pages,
      sent.filter((s) => s.t >= fromT && s.t < toT),
    );
  });

  test('a bad fromT or toT is a 400 problem saying which', async () => {
    const cases: Array<[Record<string, string>, RegExp]> = [
      [{ fromT: 'abc' }, /fromT must be a finite number/],
      [{ toT: 'NaN' }, /toT must be a finite number/],
      [{ fromT: 'Infinity' }, /fromT must be a finite number/],
      [{ toT: '1e999' }, /toT must be a finite number/],
      [{ fromT: '0x10' }, /fromT must be a finite number/],
      [{ fromT: ' 5' }, /fromT must be a finite number/],
      [{ fromT: '' }, /fromT must be a finite number/],
      [{ fromT: '10', toT: '9.5' }, /fromT \(10\) is above toT \(9\.5\)/],
    ];
    for (const [query, detail] of cases) {
      const { status, body } = await read(session.sessionId, query, 'json');
      assert.equal(status, 400, JSON.stringify(query));
      const problem = JSON.parse(body);
      assert.equal(problem.code, 'invalid_request');
      assert.match(problem.detail, detail);
    }
  });
});

describe('the chunks a read by time skips', () => {
  test('are never read: a corrupt chunk outside the range does not fail the read, one inside does', async () => {
    const session = await createSession(running.baseUrl);
    const sent = makeSamples(1, 300).map((sample) => ({ ...sample, t: sample.seq * 10 }));
    await ingest(session, sent, [100]);
    const pool = createPool(running.databaseUrl, 1, log);
    teardown.push(() => pool.end());
    // The middle chunk (seqs 101-200, t 1,010-2,000) made unreadable.
    await pool.query("UPDATE sample_chunks SET payload = '\\x00' WHERE session_id = $1 AND last_seq = 200", [session.sessionId]);
    const { status, body } = await read(session.sessionId, { fromT: '2500', toT: '2600' }, 'json');
    assert.equal(status, 200);
    assert.deepStrictEqual(
      parseDataBody('json', body, channels).samples,
      sent.filter((s) => s.t >= 2500 && s.t < 2600),
    );
    const store = new SampleStore(pool);
    const readAll = async (times?: { fromT: number; toT: number }) => {
      for await (const _ of store.readRange(session.sessionId, 0, 1_000, times));
    };
    await readAll({ fromT: 0, toT: 1_000 });
    await assert.rejects(readAll({ fromT: 1_500, toT: 1_600 }), /corrupt chunk/);
    await assert.rejects(readAll(), /corrupt chunk/);
  });
});

describe('GET /sessions/{id}/latest and firstT/lastT', () => {
  test('latest is null, then the highest committed seq after each ack; firstT/lastT the lowest and highest t', async () => {
    const session = await createSession(running.baseUrl);
    const get = async (path: string) => (await fetch(`${running.baseUrl}/api/v1/sessions/${session.sessionId}${path}`)).json();
    assert.deepStrictEqual(await get('/latest'), { sessionId: session.sessionId, sample: null });
    assert.deepEqual([session.firstT, session.lastT], [null, null]);
    const sent = jumpySamples(200, 3);
    const producer = new RecordingSocket(ingestUrl(running.wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    for (let at = 0; at < sent.length; at += 50) {
      const frame = sent.slice(at, at + 50);
      producer.send({ samples: frame });
      await producer.waitForAck(frame.at(-1)!.seq);
      assert.deepStrictEqual(await get('/latest'), { sessionId: session.sessionId, sample: frame.at(-1) });
      const record = await get('');
      const committed = ts(sent.slice(0, at + 50));
      assert.deepEqual([record.firstT, record.lastT], [Math.min(...committed), Math.max(...committed)]);
    }
    producer.close();
  });

  test('latest answers 404 for an unknown session, as /data does', async () => {
    const response = await fetch(`${running.baseUrl}/api/v1/sessions/${crypto.randomUUID()}/latest`);
    assert.equal(response.status, 404);
    assert.equal((await response.json()).code, 'not_found');
  });
});

describe('chunks stored before migration 008', () => {
  test('get their t range and their sessions firstT/lastT from the migration; reads by time are right before and after', async (t) => {
    const pool = await databaseBefore(t, 8);
    // As the previous version wrote them: no t range, in both payload layouts (1 without seqs, 0 with).
    const sessionIds: string[] = [crypto.randomUUID(), crypto.randomUUID()];
    const sent = new Map(sessionIds.map((id, i) => [id, jumpySamples(500, i)]));
    for (const [id, samples] of sent) {
      await pool.query("INSERT INTO sessions (id, token_hash, channels) VALUES ($1, '\\x00', $2)", [id, channels]);
      for (let at = 0; at < samples.length; at += 70) await insertOldChunk(pool, id, samples.slice(at, at + 70), (at / 70) % 2);
    }
    await pool.query("UPDATE sample_chunks SET payload = '\\x0000' WHERE session_id = $1 AND last_seq = 70", [sessionIds[1]]);

    const outcome = await migrate(pool);
    // And any later migration: these two are the ones that matter here.
    assert.deepEqual(outcome.applied.slice(0, 2), ['008_chunk_times', '009_chunk_time_indexes']);
    const chunks = (await pool.query('SELECT count(*)::int AS n FROM sample_chunks')).rows[0].n;
    assert.deepEqual(outcome.chunkTimes, { filled: chunks - 1, undecodable: 1 });

    const { rows } = await pool.query<{
      session_id: string;
      first_seq: string;
      last_seq: string;
      min_t: number | null;
      max_t: number | null;
    }>('SELECT session_id, first_seq, last_seq, min_t, max_t FROM sample_chunks ORDER BY session_id, last_seq');
    for (const row of rows) {
      const inChunk = ts(sent.get(row.session_id)!.filter((s) => s.seq >= Number(row.first_seq) && s.seq <= Number(row.last_seq)));
      const corrupt = row.session_id === sessionIds[1] && row.last_seq === '70';
      assert.deepEqual([row.min_t, row.max_t], corrupt ? [null, null] : [Math.min(...inChunk), Math.max(...inChunk)]);
    }
    const first = ts(sent.get(sessionIds[0])!);
    const session = (await pool.query('SELECT first_t, last_t FROM sessions WHERE id = $1', [sessionIds[0]])).rows[0];
    assert.deepEqual([session.first_t, session.last_t], [Math.min(...first), Math.max(...first)]);

    // A chunk whose range is not known is read whatever the range asked.
    await pool.query('UPDATE sample_chunks SET min_t = NULL, max_t = NULL WHERE session_id = $1', [sessionIds[0]]);
    const store = new SampleStore(pool);
    const times = { fromT: 1_200, toT: 6_000 };
    const readSeqs = async () => {
      const seqs: number[] = [];
      for await (const batch of store.readRange(sessionIds[0], 0, 10_000, times))
        for (let i = 0; i < batch.count; i++) seqs.push(batch.seq(i));
      return seqs;
    };
    const expected = sent
      .get(sessionIds[0])!
      .filter((s) => s.t >= times.fromT && s.t < times.toT)
      .map((s) => s.seq);
    assert.deepEqual(await readSeqs(), expected);
    assert.deepEqual((await migrate(pool)).chunkTimes, { filled: 8, undecodable: 1 });
    assert.deepEqual(await readSeqs(), expected);
  });
});

/** A chunk row as the code before migration 008 wrote it: the same payload, no t range. */
async function insertOldChunk(pool: ReturnType<typeof createPool>, sessionId: string, samples: readonly Sample[], layout: number) {
  const columns = [
    ...(layout === 0 ? samples.map((s) => s.seq) : []),
    ...samples.map((s) => s.t),
    ...channels.flatMap((name) => samples.map((s) => s[name])),
  ];
  await pool.query(
    `INSERT INTO sample_chunks (session_id, first_seq, last_seq, sample_count, payload_layout, payload)
     VALUES ($1, $2, $3, $4, $5, $6)`,
    [sessionId, samples[0].seq, samples.at(-1)!.seq, samples.length, layout, Buffer.from(Float64Array.from(columns).buffer)],
  );
  await pool.query('UPDATE sessions SET sample_count = sample_count + $2, last_seq = $3 WHERE id = $1', [
    sessionId,
    samples.length,
    samples.at(-1)!.seq,
  ]);
}
