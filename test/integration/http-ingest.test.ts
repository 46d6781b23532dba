/**
 * HTTP ingest, `POST /api/v1/sessions/{id}/samples` (docs/protocol.md, HTTP ingest): each body
 * type, each refusal with its status and the socket's code, what is stored (exactly once under
 * resend, nothing of a refused body), the producer lock against sockets on one instance and
 * across two, the ack meaning committed, and live viewers seeing what came in over HTTP.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, type TestContext, test } from 'node:test';
import pg from 'pg';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config.ts';
import { accessCredential, formatNumber, postSamples as sdkPostSamples, WavehouseHttpError } from '../../src/sdk/index.ts';
import { assertProblem, bearer, createKey } from '../support/access.ts';
import { startApp, startTwoInstances } from '../support/app.ts';
import { runCli } from '../support/cli.ts';
import {
  type CreatedSession,
  createSession,
  endSession,
  getData,
  ingestUrl,
  liveUrl,
  makeSamples,
  RecordingSocket,
  type Sample,
} from '../support/clients.ts';
import { holdCommits } from '../support/commit-hold.ts';
import { freshDatabase } from '../support/database.ts';
import { eventually } from '../support/eventually.ts';
import { seqsUpTo, storedTotals } from '../support/resilience-app.ts';
import { processesOnFreshDatabase } from '../support/server-process.ts';

interface Posted {
  status: number;
  retryAfter: string | null;
  // biome-ignore lint/suspicious/noExplicitAny: a body as the server sent it, each test reads the fields it expects
  body: any;
}

async function post(
  baseUrl: string,
  sessionId: string,
  body: string,
  contentType = 'application/json',
  headers: Record<string, string> = {},
): Promise<Posted> {
  const response = await fetch(`${baseUrl}/api/v1/sessions/${sessionId}/samples`, {
    method: 'POST',
    headers: { 'content-type': contentType, ...headers },
    body,
  });
  const text = await response.text();
  return { status: response.status, retryAfter: response.headers.get('retry-after'), body: text === '' ? null : JSON.parse(text) };
}

function postSamples(baseUrl: string, session: CreatedSession, samples: Sample[], token = session.ingestToken): Promise<Posted> {
  return post(baseUrl, session.sessionId, JSON.stringify({ samples }), 'application/json', bearer(token));
}

const ndjson = (samples: Sample[]) => samples.map((sample) => `${JSON.stringify(sample)}\n`).join('');

function csv(samples: Sample[], columns = ['seq', 't', 'ax', 'ay', 'az']): string {
  return `${columns.join(',')}\n${samples.map((sample) => columns.map((name) => formatNumber(sample[name])).join(',')).join('\n')}\n`;
}

async function started(t: TestContext, env: Record<string, string> = {}) {
  const { baseUrl, wsUrl, databaseUrl } = await startApp(t, env);
  const session = await createSession(baseUrl);
  return { baseUrl, wsUrl, databaseUrl, session };
}

async function storedCount(baseUrl: string, sessionId: string): Promise<number> {
  return (await getData(baseUrl, sessionId)).samples.length;
}

function assertRefused(answer: Posted, status: number, code: string): void {
  assert.equal(answer.status, status, JSON.stringify(answer.body));
  assert.equal(answer.body.code, code);
  assert.equal(typeof answer.body.detail, 'string');
}

describe('HTTP ingest bodies', () => {
  test('a JSON body is stored and answered with the ack, after commit', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 500);
    const answer = await postSamples(baseUrl, session, samples);
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.deepEqual(answer.body, { ack: 500, accepted: 500, duplicates: 0 });
    // Read straight after the answer: an ack means committed.
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('an NDJSON body, with CRLF and blank lines, is stored exactly', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 20);
    const body = `${ndjson(samples.slice(0, 10)).replaceAll('\n', '\r\n')}\n \n${ndjson(samples.slice(10))}`;
    const answer = await post(baseUrl, session.sessionId, body, 'application/x-ndjson', bearer(session.ingestToken));
    assert.deepEqual(answer.body, { ack: 20, accepted: 20, duplicates: 0 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('a CSV body, its columns in any order, round-trips every float64 as /data?format=csv writes it', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 30);
    samples[0].ax = 0.1;
    samples[1].ay = -0;
    samples[2].az = 1e21;
    samples[3].t = 5e-324;
    const answer = await post(
      baseUrl,
      session.sessionId,
      csv(samples, ['az', 't', 'seq', 'ay', 'ax']),
      'text/csv',
      bearer(session.ingestToken),
    );
    assert.deepEqual(answer.body, { ack: 30, accepted: 30, duplicates: 0 });
    const stored = (await getData(baseUrl, session.sessionId)).samples;
    assert.deepEqual(stored, samples);
    assert.ok(Object.is(stored[1].ay, -0));
    const exported = await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}/data?format=csv`)).text();
    const again = await createSession(baseUrl);
    assert.equal((await post(baseUrl, again.sessionId, exported, 'text/csv; charset=utf-8', bearer(again.ingestToken))).status, 200);
    assert.deepEqual((await getData(baseUrl, again.sessionId)).samples, samples);
  });

  test('samples without seq get seqs from the server, as on the socket', async (t) => {
    const { baseUrl, session } = await started(t);
    const answer = await post(baseUrl, session.sessionId, 't,ax,ay,az\n1,2,3,4\n5,6,7,8\n', 'text/csv', bearer(session.ingestToken));
    assert.deepEqual(answer.body, { ack: 2, accepted: 2, duplicates: 0 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, [
      { seq: 1, t: 1, ax: 2, ay: 3, az: 4 },
      { seq: 2, t: 5, ax: 6, ay: 7, az: 8 },
    ]);
  });

  test('an empty list is acked with the highest committed seq, -1 before any', async (t) => {
    const { baseUrl, session } = await started(t);
    assert.deepEqual((await postSamples(baseUrl, session, [])).body, { ack: -1, accepted: 0, duplicates: 0 });
    await postSamples(baseUrl, session, makeSamples(1, 3));
    assert.deepEqual((await postSamples(baseUrl, session, [])).body, { ack: 3, accepted: 0, duplicates: 0 });
  });
});

describe('HTTP ingest under resend', () => {
  test('a resend is counted as duplicates and stored once; a mixed one stores only what is new', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 100);
    await postSamples(baseUrl, session, samples.slice(0, 60));
    assert.deepEqual((await postSamples(baseUrl, session, samples.slice(0, 60))).body, { ack: 60, accepted: 0, duplicates: 60 });
    assert.deepEqual((await postSamples(baseUrl, session, samples.slice(40))).body, { ack: 100, accepted: 40, duplicates: 20 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
    const record = await (await fetch(`${baseUrl}/api/v1/sessions/${session.sessionId}`)).json();
    assert.equal(record.sampleCount, 100);
    assert.equal(record.lastSeq, 100);
  });
});

describe('HTTP ingest and the server killed mid-request', () => {
  test('kill -9 with a request in flight: the client resends what was not acked, and each sample is stored once, no hole', {
    timeout: 90_000,
  }, async (t) => {
    const processes = await processesOnFreshDatabase(t);
    const env = { INGEST_MAX_SAMPLES_PER_S: '0' };
    const first = await processes.start(env);
    const session = await createSession(first.baseUrl);
    const bodySamples = 200;
    // Back to back, as a client does: the one in flight at the kill fails, unacked, and is resent.
    let acked = 0;
    let stopped = false;
    const client = (async () => {
      while (!stopped) {
        const answer = await postSamples(first.baseUrl, session, makeSamples(acked + 1, bodySamples));
        assert.equal(answer.status, 200, JSON.stringify(answer.body));
        acked = answer.body.ack;
      }
    })();
    await eventually(() => assert.ok(acked >= 20 * bodySamples), { timeoutMs: 30_000 });
    first.kill('SIGKILL');
    stopped = true;
    await assert.rejects(client, 'the request in flight at the kill was not answered');
    assert.equal((await first.waitForExit(10_000)).signal, 'SIGKILL');
    const ackedAtKill = acked;

    const second = await processes.start(env);
    const survived = (await getData(second.baseUrl, session.sessionId)).samples.map((sample) => sample.seq);
    assert.ok(survived.length >= ackedAtKill, `every acked sample survived (stored ${survived.length}, acked ${ackedAtKill})`);
    assert.deepEqual(survived, seqsUpTo(survived.length));
    // The resend: the unacked body again, then two more; what the killed request stored comes back as duplicates.
    const resent = await postSamples(second.baseUrl, session, makeSamples(ackedAtKill + 1, bodySamples));
    assert.equal(resent.status, 200, JSON.stringify(resent.body));
    assert.equal(resent.body.duplicates, survived.length - ackedAtKill);
    for (let next = ackedAtKill + bodySamples + 1; next < ackedAtKill + 3 * bodySamples; next += bodySamples) {
      assert.equal((await postSamples(second.baseUrl, session, makeSamples(next, bodySamples))).status, 200);
    }
    const last = ackedAtKill + 3 * bodySamples;
    assert.deepEqual((await getData(second.baseUrl, session.sessionId)).samples, makeSamples(1, last));
    assert.deepEqual(await storedTotals(processes.databaseUrl, session.sessionId), {
      chunkSamples: last,
      sessionSampleCount: last,
      lastSeq: last,
      overlappingChunks: 0,
    });
  });
});

describe('HTTP ingest when commits are slow', () => {
  test('a request is committed at once, not left to age with the batch', async (t) => {
    // Were it left to age, its answer would be a 503 after the commit timeout, long before 10 s.
    const { baseUrl, session } = await started(t, { WRITE_BATCH_MAX_AGE_MS: '10000', INGEST_HTTP_COMMIT_TIMEOUT_MS: '5000' });
    assert.deepEqual((await postSamples(baseUrl, session, makeSamples(1, 5))).body, { ack: 5, accepted: 5, duplicates: 0 });
  });

  test('samples not committed in time are 503 with Retry-After; resending them stores each once', async (t) => {
    const { baseUrl, databaseUrl, session } = await started(t, { INGEST_HTTP_COMMIT_TIMEOUT_MS: '100' });
    const hold = await holdCommits(t, databaseUrl);
    const samples = makeSamples(1, 20);
    const late = await postSamples(baseUrl, session, samples);
    assertRefused(late, 503, 'service_unavailable');
    assert.equal(late.retryAfter, '5');
    // Still not committed: a resend meanwhile finds them accepted, and waits for the same commit.
    assertRefused(await postSamples(baseUrl, session, samples), 503, 'service_unavailable');
    assert.equal(await storedCount(baseUrl, session.sessionId), 0);
    await hold.release();
    await eventually(async () => assert.equal(await storedCount(baseUrl, session.sessionId), 20));
    const resent = await eventually(async () => {
      const answer = await postSamples(baseUrl, session, samples);
      assert.equal(answer.status, 200);
      return answer;
    });
    assert.deepEqual(resent.body, { ack: 20, accepted: 0, duplicates: 20 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('a full write queue is 503 service_unavailable with Retry-After, nothing of the body stored', async (t) => {
    const limits = { WRITE_QUEUE_MAX_BYTES: String(1024 * 1024), INGEST_MAX_FRAME_BYTES: String(4 * 1024 * 1024) };
    const { baseUrl, databaseUrl, session } = await started(t, {
      ...limits,
      INGEST_MAX_FRAME_SAMPLES: '40000',
      INGEST_MAX_SAMPLES_PER_S: '0',
      INGEST_HTTP_COMMIT_TIMEOUT_MS: '300',
    });
    const hold = await holdCommits(t, databaseUrl);
    // 30,000 samples of 3 channels are 1.2 MB queued: over the 1 MiB bound until committed.
    const filling = postSamples(baseUrl, session, makeSamples(1, 30_000));
    await hold.waiting();
    const other = await createSession(baseUrl);
    const refused = await postSamples(baseUrl, other, makeSamples(1, 10));
    assertRefused(refused, 503, 'service_unavailable');
    assert.match(refused.body.detail, /write queue is full/);
    assert.equal(refused.retryAfter, '5');
    await hold.release();
    assert.equal((await filling).status, 503, 'the filling body itself was not committed within its 300 ms');
    await eventually(async () => assert.equal(await storedCount(baseUrl, session.sessionId), 30_000));
    assert.equal(await storedCount(baseUrl, other.sessionId), 0);
    assert.deepEqual((await postSamples(baseUrl, other, makeSamples(1, 10))).body, { ack: 10, accepted: 10, duplicates: 0 });
  });
});

describe('HTTP ingest refusals', () => {
  const bad: Array<[string, string, string, number, string]> = [
    ['not JSON', '{"samples": [', 'application/json', 400, 'invalid_frame'],
    ['a value that is not a number', '{"samples":[{"seq":1,"t":1,"ax":"1","ay":2,"az":3}]}', 'application/json', 400, 'invalid_frame'],
    ['a missing channel', '{"samples":[{"seq":1,"t":1,"ax":1,"ay":2}]}', 'application/json', 400, 'wrong_channels'],
    ['seqs that do not increase', ndjson([...makeSamples(5, 1), ...makeSamples(4, 1)]), 'application/x-ndjson', 400, 'seq_not_increasing'],
    ['an NDJSON line that is not JSON', '{"seq":1,"t":1,"ax":1,"ay":2,"az":3}\n{"seq":2\n', 'application/x-ndjson', 400, 'invalid_frame'],
    ['a CSV header with another channel', 'seq,t,ax,ay,bz\n1,1,1,1,1\n', 'text/csv', 400, 'wrong_channels'],
    ['a CSV line with a field too few', 'seq,t,ax,ay,az\n1,1,1,1\n', 'text/csv', 400, 'invalid_frame'],
    ['a CSV field that is not a number', 'seq,t,ax,ay,az\n1,1,1,1,NaN\n', 'text/csv', 400, 'invalid_frame'],
    ['an empty body', '', 'application/json', 400, 'invalid_frame'],
    ['a body of another type', 'seq=1', 'application/x-www-form-urlencoded', 415, 'unsupported_media_type'],
  ];
  for (const [what, body, type, status, code] of bad) {
    test(`${what}: ${status} ${code}, nothing stored, the samples around it untouched`, async (t) => {
      const { baseUrl, session } = await started(t);
      await postSamples(baseUrl, session, makeSamples(1, 3));
      assertRefused(await post(baseUrl, session.sessionId, body, type, bearer(session.ingestToken)), status, code);
      await postSamples(baseUrl, session, makeSamples(4, 3));
      assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 6));
    });
  }

  test('over the byte limit is 413 frame_too_large, refused from its length; over the sample limit too', async (t) => {
    const { baseUrl, session } = await started(t, { INGEST_MAX_FRAME_BYTES: '4096', INGEST_MAX_FRAME_SAMPLES: '10' });
    const big = JSON.stringify({ samples: makeSamples(1, 10) }).padEnd(5000, ' ');
    assertRefused(await post(baseUrl, session.sessionId, big, 'application/json', bearer(session.ingestToken)), 413, 'frame_too_large');
    assertRefused(await postSamples(baseUrl, session, makeSamples(1, 11)), 413, 'frame_too_large');
    assertRefused(
      await post(baseUrl, session.sessionId, csv(makeSamples(1, 11)), 'text/csv', bearer(session.ingestToken)),
      413,
      'frame_too_large',
    );
    assert.equal((await postSamples(baseUrl, session, makeSamples(1, 10))).status, 200);
  });

  test('over the samples/s of the session is 429 rate_limited with Retry-After, nothing stored', async (t) => {
    const { baseUrl, session } = await started(t, { INGEST_MAX_SAMPLES_PER_S: '100', INGEST_MAX_FRAME_SAMPLES: '100' });
    assert.equal((await postSamples(baseUrl, session, makeSamples(1, 100))).status, 200);
    const refused = await postSamples(baseUrl, session, makeSamples(101, 100));
    assertRefused(refused, 429, 'rate_limited');
    assert.equal(refused.retryAfter, '1');
    assert.equal((await getData(baseUrl, session.sessionId)).samples.length, 100);
  });

  test('an unknown session is 404 before the token is looked at; then 401 for a wrong or missing token', async (t) => {
    const { baseUrl, session } = await started(t);
    const body = JSON.stringify({ samples: makeSamples(1, 1) });
    assertRefused(await post(baseUrl, crypto.randomUUID(), body, 'application/json', bearer('wrong')), 404, 'not_found');
    assertRefused(await post(baseUrl, 'not-a-uuid', body), 404, 'not_found');
    assertRefused(await post(baseUrl, session.sessionId, body), 401, 'invalid_token');
    assertRefused(await post(baseUrl, session.sessionId, body, 'application/json', bearer('wrong')), 401, 'invalid_token');
    const other = await createSession(baseUrl);
    assertRefused(await post(baseUrl, session.sessionId, body, 'application/json', bearer(other.ingestToken)), 401, 'invalid_token');
    assertRefused(await post(baseUrl, session.sessionId, body, 'application/json', { authorization: 'Basic eDp5' }), 401, 'invalid_token');
    assert.equal((await getData(baseUrl, session.sessionId)).samples.length, 0);
  });

  test('an ended session is 409 session_ended, after the token check', async (t) => {
    const { baseUrl, session } = await started(t);
    await postSamples(baseUrl, session, makeSamples(1, 2));
    assert.equal((await endSession(baseUrl, session.sessionId, session.ingestToken)).status, 200);
    assertRefused(await postSamples(baseUrl, session, makeSamples(3, 2), 'wrong'), 401, 'invalid_token');
    assertRefused(await postSamples(baseUrl, session, makeSamples(3, 2)), 409, 'session_ended');
    assert.equal((await getData(baseUrl, session.sessionId)).samples.length, 2);
  });

  test('a key with sessions:write writes; a reader key is 403', async (t) => {
    const { baseUrl, databaseUrl, session } = await started(t);
    const writer = await createKey(databaseUrl, { name: 'writer', scopes: ['sessions:write'] });
    const reader = await createKey(databaseUrl, { name: 'reader', scopes: ['sessions:read'] });
    assert.equal((await postSamples(baseUrl, session, makeSamples(1, 2), writer.key)).status, 200);
    assertRefused(await postSamples(baseUrl, session, makeSamples(3, 2), reader.key), 403, 'insufficient_scope');
    assert.equal((await getData(baseUrl, session.sessionId)).samples.length, 2);
  });
});

describe('HTTP ingest and the producer lock', () => {
  test('while a socket producer is attached, HTTP ingest is 409 producer_conflict; once it leaves, it writes', async (t) => {
    const { baseUrl, wsUrl, session } = await started(t);
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await producer.opened;
    producer.send({ samples: makeSamples(1, 5) });
    await eventually(() => assert.ok(producer.messages.some((message) => message.type === 'ack' && message.seq === 5)));
    assertRefused(await postSamples(baseUrl, session, makeSamples(6, 5)), 409, 'producer_conflict');
    producer.socket.close();
    await eventually(async () => assert.equal((await postSamples(baseUrl, session, makeSamples(1, 10))).status, 200));
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 10));
  });

  test('an HTTP ingest in flight refuses a socket producer with 4409, and a second request with 409', async (t) => {
    const { baseUrl, wsUrl, databaseUrl, session } = await started(t);
    // Its commit held back: the request stays in flight until the hold is released.
    const hold = await holdCommits(t, databaseUrl);
    const inFlight = postSamples(baseUrl, session, makeSamples(1, 5));
    await hold.waiting();
    const producer = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await eventually(() => assert.equal(producer.closed?.code, 4409));
    assertRefused(await postSamples(baseUrl, session, makeSamples(6, 5)), 409, 'producer_conflict');
    await hold.release();
    assert.deepEqual((await inFlight).body, { ack: 5, accepted: 5, duplicates: 0 });
    const after = new RecordingSocket(ingestUrl(wsUrl, session.sessionId, session.ingestToken));
    await after.opened;
    t.after(() => after.socket.terminate());
    after.send({ samples: makeSamples(6, 1) });
    await eventually(() => assert.ok(after.messages.some((message) => message.type === 'ack' && message.seq === 6)));
  });

  test('across instances: a socket on one makes the other answer 409; an HTTP ingest on one refuses a socket on the other', async (t) => {
    const database = await freshDatabase();
    const env = { LOG_LEVEL: 'silent', PORT: '0', DATABASE_URL: database.url };
    const apps = await Promise.all([buildApp(loadConfig(env)), buildApp(loadConfig(env))]);
    const [a, b] = await Promise.all(apps.map((app) => app.listen()));
    t.after(async () => {
      await Promise.all(apps.map((app) => app.close()));
      await database.drop();
    });
    const session = await createSession(a);
    const producer = new RecordingSocket(ingestUrl(a.replace(/^http/, 'ws'), session.sessionId, session.ingestToken));
    await producer.opened;
    // The lock is taken after the handshake: the ack of an empty batch says it is held.
    producer.send({ samples: [] });
    await eventually(() => assert.ok(producer.ofType('ack').length > 0));
    assertRefused(await postSamples(b, session, makeSamples(1, 5)), 409, 'producer_conflict');
    producer.socket.close();
    await eventually(async () => assert.ok(producer.closed));
    const hold = await holdCommits(t, database.url);
    // Refused while instance a still lets the socket's session go; the one that gets in stays in flight on the hold.
    const inFlight = eventually(async () => {
      const answer = await postSamples(b, session, makeSamples(1, 5));
      assert.equal(answer.status, 200);
      return answer;
    });
    await hold.waiting();
    const refused = new RecordingSocket(ingestUrl(a.replace(/^http/, 'ws'), session.sessionId, session.ingestToken));
    await eventually(() => assert.equal(refused.closed?.code, 4409));
    await hold.release();
    assert.deepEqual((await inFlight).body, { ack: 5, accepted: 5, duplicates: 0 });
  });
});

describe('HTTP ingest and the idle grace of the producer lock', () => {
  // A grace far longer than any step of these tests: what happens within it is certain.
  const grace = { INGEST_HTTP_LOCK_GRACE_MS: '2000' };

  test('requests back to back keep the session on their instance: its producer epoch is claimed once', async (t) => {
    const { baseUrl, databaseUrl, session } = await started(t, grace);
    for (let seq = 1; seq <= 30; seq += 10) assert.equal((await postSamples(baseUrl, session, makeSamples(seq, 10))).status, 200);
    const client = new pg.Client({ connectionString: databaseUrl });
    await client.connect();
    const { rows } = await client.query('SELECT producer_epoch::int AS epoch FROM sessions WHERE id = $1', [session.sessionId]);
    await client.end();
    assert.deepEqual(rows, [{ epoch: 1 }]);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, makeSamples(1, 30));
  });

  test('within the grace, a socket producer and a request on another instance are let in, not refused', async (t) => {
    const { a, b } = await startTwoInstances(t, grace);
    const session = await createSession(a.baseUrl);
    assert.equal((await postSamples(a.baseUrl, session, makeSamples(1, 5))).status, 200);
    const producer = new RecordingSocket(ingestUrl(b.wsUrl, session.sessionId, session.ingestToken));
    t.after(() => producer.socket.terminate());
    await producer.opened;
    producer.send({ samples: makeSamples(6, 5) });
    await eventually(() => assert.ok(producer.ofType('ack').some((ack) => ack.seq === 10)), { timeoutMs: 10_000 });
    assert.equal(producer.closed, null, 'not refused');
    producer.socket.close();
    await eventually(async () => assert.ok(producer.closed));
    assert.deepEqual((await postSamples(a.baseUrl, session, makeSamples(11, 5))).body, { ack: 15, accepted: 5, duplicates: 0 });
    assert.deepEqual((await postSamples(b.baseUrl, session, makeSamples(16, 5))).body, { ack: 20, accepted: 5, duplicates: 0 });
    assert.deepEqual((await getData(b.baseUrl, session.sessionId)).samples, makeSamples(1, 20));
  });
});

describe('HTTP ingest and live viewers', () => {
  test('a live viewer sees the samples of an HTTP ingest, in order, once each', async (t) => {
    const { baseUrl, wsUrl, session } = await started(t);
    const viewer = new RecordingSocket(liveUrl(wsUrl, session.sessionId, 0));
    await viewer.opened;
    t.after(() => viewer.socket.terminate());
    const samples = makeSamples(1, 50);
    await postSamples(baseUrl, session, samples.slice(0, 25));
    await postSamples(baseUrl, session, samples.slice(10));
    const seen = () => viewer.messages.filter((message) => message.type === 'samples_batch').flatMap((message) => message.payload.samples);
    await eventually(() => assert.equal(seen().length, 50));
    assert.deepEqual(seen(), samples);
  });
});

describe('HTTP ingest in private mode', () => {
  test('the ingest token still writes its own session', async (t) => {
    const { privateMode } = await import('../support/access.ts');
    const { baseUrl, databaseUrl } = await startApp(t, privateMode());
    const writer = await createKey(databaseUrl, { name: 'writer', scopes: ['sessions:write', 'sessions:read'] });
    const created = await fetch(`${baseUrl}/api/v1/sessions`, { method: 'POST', headers: bearer(writer.key) });
    const session = (await created.json()) as CreatedSession;
    assert.equal((await postSamples(baseUrl, session, makeSamples(1, 3))).status, 200);
    assertProblem({ status: 401, body: (await post(baseUrl, session.sessionId, '{"samples":[]}')).body }, 401, 'missing_credential');
  });
});

describe('SDK postSamples', () => {
  test('sends samples with the ingest token and resolves with the receipt once they are committed; -0 stays -0', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 10);
    samples[3].ax = -0;
    const receipt = await sdkPostSamples(baseUrl, session.sessionId, samples, { token: session.ingestToken });
    assert.deepEqual(receipt, { ack: 10, accepted: 10, duplicates: 0 });
    const stored = (await getData(baseUrl, session.sessionId)).samples;
    assert.deepEqual(stored, samples);
    assert.ok(Object.is(stored[3].ax, -0));
    assert.deepEqual(await sdkPostSamples(baseUrl, session.sessionId, samples, { token: session.ingestToken }), {
      ack: 10,
      accepted: 0,
      duplicates: 10,
    });
  });

  test('sends with a credential, and a refusal is a WavehouseHttpError with the code', async (t) => {
    const { baseUrl, databaseUrl, session } = await started(t);
    const writer = await createKey(databaseUrl, { name: 'writer', scopes: ['sessions:write'] });
    const credential = accessCredential({ accessToken: writer.key });
    assert.equal((await sdkPostSamples(baseUrl, session.sessionId, makeSamples(1, 2), { credential })).ack, 2);
    await assert.rejects(
      sdkPostSamples(baseUrl, session.sessionId, [{ seq: 3, t: 1, ax: 1 }], { token: session.ingestToken }),
      (error: unknown) => error instanceof WavehouseHttpError && error.status === 400 && error.code === 'wrong_channels',
    );
    await assert.rejects(
      sdkPostSamples(baseUrl, session.sessionId, makeSamples(3, 1), { token: 'wrong' }),
      (error: unknown) => error instanceof WavehouseHttpError && error.status === 401 && error.code === 'invalid_token',
    );
  });
});

describe('wavehouse ingest', () => {
  async function tempFile(t: TestContext, name: string, text: string): Promise<string> {
    const dir = await mkdtemp(path.join(tmpdir(), 'wavehouse-ingest-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  }

  test('sends a CSV file in batches, resuming after what the session has stored', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 2_500);
    const file = await tempFile(t, 'samples.csv', csv(samples, ['t', 'ax', 'seq', 'ay', 'az']));
    // A first run that stopped after 1,000 samples.
    await postSamples(baseUrl, session, samples.slice(0, 1_000));
    const env = { WAVEHOUSE_TOKEN: session.ingestToken };
    const run = await runCli(t, ['ingest', session.sessionId, file, '--batch', '400', '--url', baseUrl], { env });
    assert.equal(run.code, 0, run.stderr);
    assert.deepEqual(JSON.parse(run.stdout), { ack: 2_500, accepted: 1_500, duplicates: 0, skipped: 1_000 });
    assert.match(run.stderr, /stored 1500 samples/);
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('reads NDJSON from stdin; a rerun sends nothing again', async (t) => {
    const { baseUrl, session } = await started(t);
    const samples = makeSamples(1, 300);
    await postSamples(baseUrl, session, samples.slice(0, 100));
    const env = { WAVEHOUSE_TOKEN: session.ingestToken };
    const args = ['ingest', session.sessionId, '-', '--url', baseUrl, '--quiet'];
    const first = await runCli(t, args, { env, stdin: ndjson(samples) });
    assert.equal(first.code, 0, first.stderr);
    assert.deepEqual(JSON.parse(first.stdout), { ack: 300, accepted: 200, duplicates: 0, skipped: 100 });
    assert.equal(first.stderr, '');
    const again = await runCli(t, args, { env, stdin: ndjson(samples) });
    assert.deepEqual(JSON.parse(again.stdout), { ack: 300, accepted: 0, duplicates: 0, skipped: 300 });
    assert.deepEqual((await getData(baseUrl, session.sessionId)).samples, samples);
  });

  test('says what is wrong: no token, a wrong one, an unknown session, a line without seq, a refused batch', async (t) => {
    const { baseUrl, session } = await started(t);
    const url = ['--url', baseUrl];
    const body = ndjson(makeSamples(1, 3));
    const noToken = await runCli(t, ['ingest', session.sessionId, ...url], { stdin: body });
    assert.equal(noToken.code, 2);
    assert.match(noToken.stderr, /ingest token/);
    const wrong = await runCli(t, ['ingest', session.sessionId, ...url], { stdin: body, env: { WAVEHOUSE_TOKEN: 'wrong' } });
    assert.equal(wrong.code, 1);
    assert.match(wrong.stderr, /401 invalid_token/);
    const env = { WAVEHOUSE_TOKEN: session.ingestToken };
    const unknown = await runCli(t, ['ingest', crypto.randomUUID(), ...url], { stdin: body, env });
    assert.match(unknown.stderr, /no session/);
    const noSeq = await runCli(t, ['ingest', session.sessionId, ...url], { stdin: 't,ax,ay,az\n1,2,3,4\n', env });
    assert.equal(noSeq.code, 1);
    assert.match(noSeq.stderr, /no seq column/);
    const refused = await runCli(t, ['ingest', session.sessionId, ...url], { stdin: 'seq,t,ax,ay,bz\n1,2,3,4,5\n', env });
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /400 wrong_channels: .*run it again to resume/);
    assert.equal((await getData(baseUrl, session.sessionId)).samples.length, 0);
  });
});
